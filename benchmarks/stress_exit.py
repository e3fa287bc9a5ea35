#!/usr/bin/env python
"""Do two-process runs end cleanly? N launches of each kind, counting non-zero exits and abort messages.

    python benchmarks/stress_exit.py                  # 25 runs of each kind (about 20 minutes on 2 cores)
    python benchmarks/stress_exit.py --runs 5 --kinds zero2_resume

Kinds: ddp (plain DistributedDataParallel), ddp_resume (the same run resumed mid-epoch from its checkpoint-3),
zero2 and zero2_resume (through a DeepSpeed ZeRO-2 engine; skipped where deepspeed does not import), zero3. Each run
is `torchrun --nproc_per_node 2 run_glue.py` on the CPU (gloo) with a tiny RoBERTa + LoRA on a made-up SST-2-like
task, 40 training rows, evaluation and a checkpoint every 3 steps. A run counts as failed when torchrun exits
non-zero or when its output holds a sign of an abort (std::terminate, a signal, a core dump), even with exit 0.
The goal is 0 everywhere. Not a unit test: it takes long and measures a rate.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "text-classification"
ABORT_SIGNS = ("terminate called", "aborted", "core dumped", "sigabrt", "sigsegv", "signal 6", "exitcode: -6",
               "segmentation fault")
KINDS = ("ddp", "ddp_resume", "zero2", "zero2_resume", "zero3")


def make_inputs(root):
    sys.path.insert(0, str(EXAMPLES))
    import make_tiny

    texts = make_tiny.write_sst2_like(str(root / "SST-2"), 64, 16, 8, seed=3)
    vocab = make_tiny.train_tokenizer(texts, str(root / "model"), vocab_size=400, model_max_length=64)
    make_tiny.make_model(str(root / "model"), vocab, hidden_size=32, heads=2, layers=2, max_seq_length=64)


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_args(root, out, kind):
    args = ["--model_name_or_path", str(root / "model"), "--task_name", "sst2", "--data_dir", str(root / "SST-2"),
            "--output_dir", str(out), "--do_train", "--do_eval", "--max_train_samples", "40",
            "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2", "--num_train_epochs", "3",
            "--learning_rate", "1e-2", "--seed", "0", "--save_steps", "3", "--evaluation_strategy", "steps",
            "--eval_steps", "3", "--report_to", "none", "--disable_tqdm", "true", "--cache_dir", str(root / "cache"),
            "--apply_lora", "--lora_r", "2", "--lora_alpha", "4"]
    if kind.startswith("zero"):
        args += ["--deepspeed", str(ROOT / "scripts" / f"ds_config_{kind.split('_')[0]}.json")]
    return args


def launch(args):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(free_port()), str(EXAMPLES / "run_glue.py"), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    began = time.time()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    aborted = [sign for sign in ABORT_SIGNS if sign in output.lower()]
    return result.returncode, aborted, time.time() - began, output


def stress(root, kind, runs, log):
    """(runs, non-zero exits, runs with abort messages, mean seconds) for `kind`."""
    base = kind.split("_")[0]
    reference = root / f"{base}_reference"
    if kind.endswith("_resume") and not (reference / "checkpoint-3").is_dir():
        code, aborted, _, output = launch(run_args(root, reference, base))
        if code != 0 or not (reference / "checkpoint-3").is_dir():
            raise SystemExit(f"the {base} reference run failed (exit {code}): its checkpoint-3 is needed\n"
                             + output[-2000:])
    failed, abort_runs, seconds = 0, 0, []
    for i in range(runs):
        out = root / f"{kind}_{i}"
        shutil.rmtree(out, ignore_errors=True)
        if kind.endswith("_resume"):
            out.mkdir()
            shutil.copytree(reference / "checkpoint-3", out / "checkpoint-3")
        code, aborted, took, output = launch(run_args(root, out, base))
        seconds.append(took)
        failed += code != 0
        abort_runs += bool(aborted)
        status = "ok" if code == 0 and not aborted else f"exit {code} {aborted}"
        print(f"{kind:>13} {i + 1:>3}/{runs}: {status} ({took:.1f} s)", flush=True)
        if code != 0 or aborted:
            log.write(f"==== {kind} run {i}: exit {code}, signs {aborted}\n{output[-4000:]}\n")
        shutil.rmtree(out, ignore_errors=True)
    return runs, failed, abort_runs, sum(seconds) / max(len(seconds), 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=25, help="launches of each kind (default 25)")
    parser.add_argument("--kinds", default="ddp,ddp_resume,zero2,zero2_resume",
                        help=f"comma-separated, among {', '.join(KINDS)}")
    parser.add_argument("--log", default="stress_exit.log", help="where the output of failed runs goes")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or args.runs < 1:
        parser.error(f"unknown kind {unknown[0]}: pick from {', '.join(KINDS)}" if unknown else "--runs must be >= 1")
    try:
        import deepspeed  # noqa: F401
        have_deepspeed = True
    except Exception:  # noqa: BLE001 - any failure to import means: no engine here
        have_deepspeed = False
    rows = []
    with tempfile.TemporaryDirectory() as tmp, open(args.log, "w") as log:
        root = Path(tmp)
        make_inputs(root)
        for kind in kinds:
            if kind.startswith("zero") and not have_deepspeed:
                print(f"{kind}: skipped, deepspeed does not import here")
                continue
            rows.append((kind, *stress(root, kind, args.runs, log)))
    print("\n| kind | runs | non-zero exits | runs with abort messages | mean s/run |")
    print("|---|---|---|---|---|")
    for kind, runs, failed, aborts, mean in rows:
        print(f"| {kind} | {runs} | {failed} | {aborts} | {mean:.1f} |")
    total = sum(r[1] for r in rows)
    bad = sum(max(r[2], r[3]) for r in rows)
    print(f"\n{bad} of {total} runs did not end cleanly" + (f" (their output: {args.log})" if bad else ""))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
