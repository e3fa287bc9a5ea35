"""Run the original Transformers 4.4.2 tests (the fork's examples/NLU/tests) against this package, file by file.

    python benchmarks/compat_442.py --tests /path/to/examples/NLU/tests [--files test_x.py ...] [--json out.json]

The tests are a reference, never part of this repository: the folder given is copied to a temporary directory and
run there, one file per pytest subprocess, strictly (no reruns, no retries). This package is imported as installed
(or from src/ when it is not). benchmarks/compat_442_exclusions.txt (committed) lists

- `test id :: reason`: tests deselected, each with its reason (a category of the scope or a README departure);
- `[stub] dotted.name :: reason`: names the original files import at module level that are out of scope here
  (other families, other heads, generation, TF): the plugin, benchmarks/compat_442_plugin.py, provides a
  placeholder for each so that the file still collects, and drops placeholders from a test class's
  `all_model_classes` / `all_generative_model_classes`, so the common tests run on the classes shipped here.

Prints one row per file (collected, excluded, passed, failed, skipped, errors) and the failures grouped by cause
(the first line of the exception).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXCLUSIONS = HERE / "compat_442_exclusions.txt"

# The 19 files covering what this package ships (RoBERTa, DeBERTa-V2, BERT; Trainer and its pieces; the Auto layer).
FILES = [
    "test_modeling_roberta.py", "test_modeling_deberta_v2.py", "test_modeling_bert.py",
    "test_tokenization_roberta.py", "test_tokenization_deberta_v2.py", "test_tokenization_bert.py",
    "test_trainer.py", "test_trainer_callback.py", "test_trainer_utils.py", "test_optimization.py",
    "test_hf_argparser.py", "test_data_collator.py", "test_model_output.py", "test_activations.py",
    "test_logging.py", "test_modeling_auto.py", "test_configuration_auto.py", "test_tokenization_auto.py",
    "test_file_utils.py",
]


def parse_exclusions(path=EXCLUSIONS):
    """-> (tests {id: reason}, stubs {dotted name: reason}); '#' starts a comment line."""
    tests, stubs = {}, {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, reason = line.partition(" :: ")
        if not sep or not reason.strip():
            raise ValueError(f"{path}:{number}: expected 'test id :: reason', got {line!r}")
        if key.startswith("[stub] "):
            stubs[key[len("[stub] "):].strip()] = reason.strip()
        else:
            tests[key.strip()] = reason.strip()
    return tests, stubs


def run_file(workdir, name, timeout):
    results = Path(workdir) / f".{name}.results.json"
    env = dict(os.environ, COMPAT442_RESULTS=str(results), COMPAT442_EXCLUSIONS=str(EXCLUSIONS),
               PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), str(REPO / "src"),
                                                        os.environ.get("PYTHONPATH", "")])),
               PYTHONDONTWRITEBYTECODE="1", TOKENIZERS_PARALLELISM="false")
    env.pop("RUN_SLOW", None)  # slow tests download hub checkpoints: they stay skipped, as in 4.4.2's CI default
    cmd = [sys.executable, "-m", "pytest", f"tests/{name}", "-p", "compat_442_plugin", "-p", "no:cacheprovider",
           "-p", "no:randomly", "-p", "no:rerunfailures", "-q", "-rN", "--no-header", "-c", "pytest.ini",
           "--rootdir", str(workdir)]
    start = time.time()
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
        output = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        output = f"TIMEOUT after {timeout}s\n{(e.stdout or b'')[-2000:]!r}"
    seconds = time.time() - start
    if not results.is_file():
        lines = [line for line in output.strip().splitlines() if line.strip()]
        return {"file": name, "tests": {}, "collection_errors": [f"no results: {lines[-1] if lines else ''}"],
                "excluded": 0, "seconds": seconds}
    data = json.loads(results.read_text())
    data.update(file=name, seconds=seconds)
    return data


def summarize(data):
    counts = defaultdict(int)
    for outcome, _ in data["tests"].values():
        counts[outcome] += 1
    errors = counts["error"] + len(data["collection_errors"])
    collected = len(data["tests"]) + data["excluded"]
    return {"collected": collected, "excluded": data["excluded"], "passed": counts["passed"],
            "failed": counts["failed"], "skipped": counts["skipped"], "errors": errors}


def render(all_data):
    head = ["file", "collected", "excluded", "passed", "failed", "skipped", "errors"]
    rows, total = [], defaultdict(int)
    for data in all_data:
        s = summarize(data)
        rows.append([data["file"]] + [str(s[k]) for k in head[1:]])
        for k in head[1:]:
            total[k] += s[k]
    rows.append(["TOTAL"] + [str(total[k]) for k in head[1:]])
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows]
    in_scope = total["passed"] + total["failed"] + total["errors"]
    rate = 100.0 * total["passed"] / in_scope if in_scope else 0.0
    out.append("")
    out.append(f"in scope (run, not skipped): {in_scope}; passed {total['passed']} ({rate:.1f} %); "
               f"excluded {total['excluded']}; skipped {total['skipped']}")
    causes = defaultdict(list)
    for data in all_data:
        for error in data["collection_errors"]:
            causes[f"[collection] {error}"].append(data["file"])
        for test_id, (outcome, cause) in sorted(data["tests"].items()):
            if outcome in ("failed", "error"):
                causes[cause or "(no message)"].append(test_id)
    if causes:
        out += ["", "failures by cause (count, cause, tests):"]
        for cause, ids in sorted(causes.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            out.append(f"{len(ids):4d}  {cause}")
            out += [f"        {i}" for i in ids]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", required=True, help="folder holding the original 4.4.2 tests (examples/NLU/tests)")
    parser.add_argument("--files", nargs="*", default=FILES, help="test files to run (default: the 19)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per file")
    parser.add_argument("--json", help="also write the raw per-test results here")
    args = parser.parse_args(argv)
    source = Path(args.tests).resolve()
    missing = [f for f in args.files if not (source / f).is_file()]
    if missing:
        parser.error(f"{source} lacks {missing}: pass the fork's examples/NLU/tests folder")
    parse_exclusions()  # fail early on a malformed list
    all_data = []
    with tempfile.TemporaryDirectory(prefix="compat442-") as workdir:
        shutil.copytree(source, Path(workdir) / "tests")
        (Path(workdir) / "pytest.ini").write_text("[pytest]\n")
        for name in args.files:
            data = run_file(workdir, name, args.timeout)
            s = summarize(data)
            print(f"{name}: {s} ({data['seconds']:.0f}s)", file=sys.stderr, flush=True)
            all_data.append(data)
    if args.json:
        Path(args.json).write_text(json.dumps(all_data, indent=1))
    print(render(all_data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
