#!/usr/bin/env python
"""Endurance (issue 12 item 6): a long run_glue.py run on a tiny RoBERTa + LoRA, evaluating and saving every 500
steps: resident memory and open file descriptors must stay flat after a warm-up, and no more than
--save_total_limit checkpoints may be left on disk after any save.

    python benchmarks/endurance.py [--steps 5000] [--every 500] [--save_total_limit 2] [--workdir DIR]

run_glue.main runs in this process with one extra callback. It samples at the end of every 100th step, before that
step's evaluation or save, so no file a save holds open is counted, and it counts the checkpoint folders after each
save (the new one is complete before the oldest is removed, so during a save there is one more). One table row per
--every steps; exit status 1 when a check fails. Linux only (/proc).
"""
import argparse
import ctypes
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "text-classification"


def memory_mib(trim=False):
    """Resident memory: all of it, and the anonymous part (heap; the rest maps files such as shared libraries).
    trim: first hand the heap's free pages back to the system (glibc's malloc_trim), leaving memory in use."""
    if trim:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/status") as f:
        kib = {line.split(":")[0]: int(line.split()[1]) for line in f if line.startswith(("VmRSS:", "RssAnon:"))}
    return kib["VmRSS"] / 1024, kib["RssAnon"] / 1024


def checkpoints(out):
    return sorted(p.name for p in Path(out).glob("checkpoint-*") if p.is_dir())


def watched_trainer(trainer_class, samples, after_saves, start, trim):
    from transformers import TrainerCallback

    class Watch(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % 100 == 0:
                rss, anon = memory_mib(trim)
                samples[state.global_step] = (rss, anon, len(os.listdir("/proc/self/fd")),
                                              len(checkpoints(args.output_dir)), time.time() - start)

        def on_save(self, args, state, control, **kwargs):
            after_saves.append(len(checkpoints(args.output_dir)))

    class Watched(trainer_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(Watch())

    return Watched


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--every", type=int, default=500, help="evaluate and save every this many steps")
    parser.add_argument("--save_total_limit", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1000, help="the baseline sample's step (a multiple of 100)")
    parser.add_argument("--trim", action="store_true",
                        help="malloc_trim before each sample: growth left is memory in use, not kept by the allocator")
    parser.add_argument("--workdir", help="keep the run here (default: a temporary folder, removed at the end)")
    args = parser.parse_args(argv)
    if args.warmup % 100 or args.steps < args.warmup + args.every:
        parser.error("--warmup must be a multiple of 100 and --steps at least --warmup + --every")
    if args.workdir and os.path.isdir(args.workdir) and os.listdir(args.workdir):
        parser.error(f"--workdir {args.workdir} is not empty: pick a new folder")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="endurance_"))
    try:
        return run(args, work)
    finally:
        if not args.workdir:
            shutil.rmtree(work)


def run(args, work):
    sys.path.insert(0, str(EXAMPLES))
    import make_tiny
    import run_glue
    import torch

    torch.set_num_threads(1)  # a 32-wide model: more threads only add overhead

    # the quickstart's made-up SST-2-like task and a tiny random RoBERTa with a tokenizer trained on it
    texts = make_tiny.write_sst2_like(str(work / "data"), n_train=512, n_dev=128, n_test=8)
    vocab = make_tiny.train_tokenizer(texts, str(work / "model"), vocab_size=400, model_max_length=64)
    make_tiny.make_model(str(work / "model"), vocab, hidden_size=32, heads=2, layers=2, max_seq_length=64)

    samples, after_saves, start = {}, [], time.time()
    run_glue.Trainer = watched_trainer(run_glue.Trainer, samples, after_saves, start, args.trim)
    run_glue.main(["--model_name_or_path", str(work / "model"), "--task_name", "sst2", "--data_dir", str(work / "data"),
                   "--output_dir", str(work / "out"), "--do_train", "--do_eval", "--apply_lora", "--lora_r", "4",
                   "--lora_alpha", "8", "--max_steps", str(args.steps), "--per_device_train_batch_size", "8",
                   "--learning_rate", "5e-3", "--evaluation_strategy", "steps", "--eval_steps", str(args.every),
                   "--save_strategy", "steps", "--save_steps", str(args.every),
                   "--save_total_limit", str(args.save_total_limit), "--logging_steps", "100",
                   "--disable_tqdm", "true", "--report_to", "none", "--seed", "0"])

    print(f"\n{args.steps} steps, evaluation + checkpoint every {args.every}, save_total_limit {args.save_total_limit}"
          + (", malloc_trim before each sample" if args.trim else ""))
    print("| step | RSS (MiB) | of which anonymous (MiB) | open fds | checkpoints on disk | elapsed (s) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for step in sorted(s for s in samples if s % args.every == 0):
        rss, anon, fds, on_disk, elapsed = samples[step]
        print(f"| {step} | {rss:.1f} | {anon:.1f} | {fds} | {on_disk} | {elapsed:.0f} |")
    later = [v for s, v in samples.items() if s >= args.warmup]
    base_rss, base_fds = samples[args.warmup][0], samples[args.warmup][2]
    top = max(v[0] for v in later)
    fds = sorted({v[2] for v in later})
    checks = {
        f"RSS after step {args.warmup}: at most {top:.1f} MiB, {top / base_rss - 1:+.1%} on {base_rss:.1f} MiB "
        "(limit +5%)": top <= 1.05 * base_rss,
        f"open fds after step {args.warmup}: {fds[0]}..{fds[-1]}, baseline {base_fds}": fds == [base_fds],
        f"checkpoints on disk after each of {len(after_saves)} saves: at most {max(after_saves)} "
        f"(limit {args.save_total_limit})": max(after_saves) <= args.save_total_limit,
    }
    for text, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    print(f"wall time {time.time() - start:.0f} s")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
