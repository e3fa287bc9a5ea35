"""One side-by-side speed harness: this package against stock Hugging Face transformers + PEFT (the peer).

    python benchmarks/bench.py [--peer-python /tmp/hf/bin/python] [--quick] [--parts abcd] [--write]
    python benchmarks/bench.py --device cuda --write          # the same on a GPU machine

The two packages share the import name `transformers`, so each side runs in its own interpreter: this file calls
itself with --worker under each python, one subprocess per measurement, alternating ours/peer in every round (the
side that goes first swaps each round), so a shared machine's slow spells hit both sides alike. A subprocess's
peak RSS comes from the kernel (wait4). Parts:

  a  one LoRA training step (forward, backward, AdamW) of RoBERTa-base and DeBERTa-V2-base shapes, random init,
     r=8 on query/value, batch 16 x 128 with padding in half the rows, fp32 and bf16 autocast: median of all timed
     steps over the rounds, achieved FLOP/s against a matmul peak measured in the same run;
  b  one epoch + dev evaluation on the first rows of SST-2 (a real GLUE folder) with scripts/roberta_base_sst2.sh's
     settings, RoBERTa-base shape: run_glue.py (dynamic padding with packed tokens, the default; the same with
     --pack_tokens false, 4.4.2's computation; --group_by_length; --pad_to_max_length --pack_tokens false, the
     fork's behaviour, on a small subset since it is ~20x slower) against benchmarks/hf_peft_glue.py (Trainer + PEFT);
  c  evaluation throughput of a model with merged LoRA against the same model without LoRA;
  d  wall time of `python -c "import transformers"` and of run_glue.py --help (peer: importing what --help needs);
  e  peak RSS of the processes of (a) and (b).

--write puts the tables in benchmarks/RESULTS.md under SECTION (replacing an older copy of that section only).
The peer's python comes from --peer-python, else $LORA_PEER_PYTHON, else /tmp/hf/bin/python; make it with
`python3 -m venv /tmp/hf && /tmp/hf/bin/pip install torch==2.13.0 transformers peft protobuf`.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN_GLUE = REPO / "examples" / "text-classification" / "run_glue.py"
HF_GLUE = REPO / "benchmarks" / "hf_peft_glue.py"
TOKENIZER = REPO.parent / "shared" / "data" / "tokenizers" / "roberta-base"
SECTION = "## Whole step, whole run, memory and start-up (bench.py)"

ROBERTA = dict(model_type="roberta", vocab_size=50265, hidden_size=768, num_hidden_layers=12,
               num_attention_heads=12, intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1,
               pad_token_id=1, bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)
DEBERTA = dict(model_type="deberta-v2", vocab_size=128100, hidden_size=768, num_hidden_layers=12,
               num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512, relative_attention=True,
               position_buckets=256, max_relative_positions=-1, share_att_key=True, pos_att_type="p2c|c2p",
               norm_rel_ebd="layer_norm", position_biased_input=False, type_vocab_size=0, layer_norm_eps=1e-7,
               pad_token_id=0)
SHAPES = {"RoBERTa-base": ROBERTA, "DeBERTa-V2-base": DEBERTA}
TARGETS = {"RoBERTa-base": ["query", "value"], "DeBERTa-V2-base": ["query_proj", "value_proj"]}
LORA_R, LORA_ALPHA = 8, 16
# roberta_base_sst2.sh (batch 16 per device, no accumulation here; eval batch left at the default 8)
SST2 = dict(max_seq_length=512, batch=16, eval_batch=8, lr=5e-4, weight_decay=0.1, warmup_ratio=0.06, seed=0)


# ----------------------------------------------------------------------------------------------- worker side

def build(name, lora, num_labels=2):
    """A random-init classifier of the named shape, seed 0; with LoRA r=8 on query/value, only LoRA and everything
    outside the backbone (pooler, head) train, as run_glue --apply_lora does. The peer's model comes wrapped in
    PEFT's LoraModel (its forward is the model's; merge_and_unload folds the adapters in)."""
    import torch
    import transformers

    torch.manual_seed(0)
    prefix = "Roberta" if name == "RoBERTa-base" else "DebertaV2"
    shape = {k: v for k, v in SHAPES[name].items() if k != "model_type"}
    config = getattr(transformers, prefix + "Config")(**shape, num_labels=num_labels)
    ours = hasattr(config, "apply_lora")  # this package's configs carry the fork's flags
    if lora and ours:
        config.update(dict(apply_lora=True, lora_r=LORA_R, lora_alpha=LORA_ALPHA))
    model = net = getattr(transformers, prefix + "ForSequenceClassification")(config)
    if lora:
        if not ours:
            from peft import LoraConfig, get_peft_model
            model = get_peft_model(net, LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0,
                                                   target_modules=TARGETS[name])).base_model
        for pname, p in net.named_parameters():
            p.requires_grad = "lora_" in pname or not pname.startswith(net.base_model_prefix + ".")
    return model


def batch(torch, name, size, length, device):
    g = torch.Generator().manual_seed(size * 1000 + length)
    ids = torch.randint(5, SHAPES[name]["vocab_size"], (size, length), generator=g)
    mask = torch.ones(size, length, dtype=torch.long)
    mask[size // 2:, length * 3 // 4:] = 0  # half the rows end in padding, as a dynamically padded batch does
    ids[:, 0] = 0 if name == "RoBERTa-base" else 1
    ids[mask == 0] = SHAPES[name]["pad_token_id"]
    return ids.to(device), mask.to(device), torch.tensor([i % 2 for i in range(size)], device=device)


def step_flops(name, size, length):
    """Matrix-product FLOPs of one LoRA training step, the same count for both sides: every linear layer forward
    plus its input gradient (2x), attention products forward plus both operand gradients (3x); DeBERTa's c2p/p2c
    products against the 2 x 256 relative positions count as attention products."""
    s = SHAPES[name]
    h, inner, layers, tokens = s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"], size * length
    linear = 2 * tokens * (4 * h * h + 2 * h * inner + 2 * 2 * h * LORA_R)
    attention = 2 * 2 * size * length * length * h
    if s.get("relative_attention"):
        attention += 2 * 2 * tokens * 2 * s["position_buckets"] * h
    return layers * (2 * linear + 3 * attention)


def timer(torch, device):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def timed(fn):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - start
    return timed


def work_peak(job, torch, device):
    """Best GEMM rate of 2048^3 products (fp32, bf16): the ceiling the step's FLOP/s is read against."""
    timed, n, out = timer(torch, device), 2048, {}
    for dtype in ("fp32", "bf16"):
        a = torch.randn(n, n, device=device, dtype=getattr(torch, {"fp32": "float32", "bf16": "bfloat16"}[dtype]))
        a @ a
        out[dtype] = max(2 * n ** 3 * 3 / timed(lambda: [a @ a for _ in range(3)]) for _ in range(5))
    return out


def work_step(job, torch, device):
    model = build(job["model"], lora=True).to(device).train()
    ids, mask, labels = batch(torch, job["model"], job["batch"], job["length"], device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=job["dtype"] == "bf16")

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
    timed = timer(torch, device)
    times = [timed(step) for _ in range(job["warmup"] + job["steps"])][job["warmup"]:]
    return {"times": times}


def work_merged(job, torch, device):
    """Eval forward throughput: plain model vs the same weights with LoRA (B non-zero) merged in, interleaved."""
    plain = build(job["model"], lora=False).to(device).eval()
    lora = build(job["model"], lora=True).to(device).eval()
    with torch.no_grad():
        for pname, p in lora.named_parameters():
            if "lora_B" in pname:
                p.normal_(0, 0.02)
    if hasattr(lora.config, "apply_lora"):
        from transformers.lora import merge_lora
        # ours drew LoRA's init while building, so its frozen weights differ from plain's: give it plain's
        lora.load_state_dict(plain.state_dict(), strict=False)
        merge_lora(lora)
    else:
        lora = lora.merge_and_unload()
    ids, mask, _ = batch(torch, job["model"], job["batch"], job["length"], device)
    timed, times = timer(torch, device), {"plain": [], "merged": []}
    with torch.no_grad():
        for i in range(job["warmup"] + job["steps"]):
            for key, model in (("plain", plain), ("merged", lora)):
                t = timed(lambda: model(input_ids=ids, attention_mask=mask))
                if i >= job["warmup"]:
                    times[key].append(t)
    return times


def worker(job):
    import torch

    device = torch.device(job["device"])
    result = {"peak": work_peak, "step": work_step, "merged": work_merged}[job["kind"]](job, torch, device)
    print(json.dumps(result))


# ----------------------------------------------------------------------------------------------- parent side

def run(cmd, cwd=None):
    """Run cmd to the end; (seconds, peak RSS in MiB, stdout). Exits with its stderr when it fails."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=cwd,
                                env=dict(os.environ, PYTHONWARNINGS="ignore"))
        _, status, usage = os.wait4(proc.pid, 0)  # reaped here, not by Popen: its rusage is this child's alone
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0), err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"bench.py: {' '.join(map(str, cmd[:3]))} ... failed:\n{err.read()[-3000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read()


def run_worker(python, job):
    _, rss, out = run([python, __file__, "--worker", json.dumps(job)], cwd="/")  # cwd: never this package's src
    result = json.loads(out.strip().splitlines()[-1])
    result["rss"] = rss
    return result


def sides(args, round_no):
    pair = [("ours", sys.executable), ("peer", args.peer_python)]
    return pair if round_no % 2 == 0 else pair[::-1]


def part_a(args):
    jobs = [(m, d) for m in SHAPES for d in ("fp32", "bf16")]
    times = {(side, m, d): [] for side in ("ours", "peer") for m, d in jobs}
    rss = {}
    peak = {"fp32": 0.0, "bf16": 0.0}
    base = dict(kind="step", device=args.device, batch=args.batch, length=args.length, warmup=args.warmup,
                steps=args.steps)
    for r in range(args.rounds):
        for dtype, rate in run_worker(sys.executable, dict(kind="peak", device=args.device)).items():
            if dtype in peak:
                peak[dtype] = max(peak[dtype], rate)
        for model, dtype in jobs:
            for side, python in sides(args, r):
                out = run_worker(python, dict(base, model=model, dtype=dtype))
                times[side, model, dtype] += out["times"]
                rss[side, model, dtype] = max(rss.get((side, model, dtype), 0), out["rss"])
                print(f"  a round {r + 1} {side} {model} {dtype}: "
                      f"{statistics.median(out['times']):.3f} s/step, {out['rss']:.0f} MiB", flush=True)
    rows = ["| shape | dtype | ours s/step | peer s/step | speed-up | ours TFLOP/s (% of peak) | "
            "peer TFLOP/s (% of peak) | ours peak RSS MiB | peer peak RSS MiB | RSS ours/peer |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    medians = {}
    for model, dtype in jobs:
        flops = step_flops(model, args.batch, args.length)
        cells = []
        for side in ("ours", "peer"):
            medians[side, model, dtype] = statistics.median(times[side, model, dtype])
        o, p = medians["ours", model, dtype], medians["peer", model, dtype]
        for t in (o, p):
            cells.append(f"{flops / t / 1e12:.3f} ({100 * flops / t / peak[dtype]:.0f} %)")
        ro, rp = rss["ours", model, dtype], rss["peer", model, dtype]
        rows.append(f"| {model} | {dtype} | {o:.3f} | {p:.3f} | {p / o:.2f}x | {cells[0]} | {cells[1]} | "
                    f"{ro:.0f} | {rp:.0f} | {ro / rp:.2f} |")
    extra = []
    for model in SHAPES:
        o16, p32 = medians["ours", model, "bf16"], medians["peer", model, "fp32"]
        extra.append(f"{model}: ours bf16 vs peer fp32 {p32 / o16:.2f}x")
    head = (f"Matmul peak measured here (2048^3 GEMM, best of 5): fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, "
            f"bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s. Batch {args.batch} x {args.length}, median of "
            f"{len(times['ours', model, dtype])} timed steps per cell ({args.rounds} round(s) x {args.steps} after "
            f"{args.warmup} warm-up). " + "; ".join(extra) + ". TFLOP/s counts the padded step's matrix products "
            "on both sides (the peer's work); ours skips the padding rows' per-token products (packed tokens: 1/8 of "
            "the tokens here), so its figure is an effective rate and may pass the GEMM peak's share.")
    return head + "\n\n" + "\n".join(rows)


def model_dir_code():
    """Code making a random-init RoBERTa-base classifier (seed 0) in the folder sys.argv[1], run by the peer's
    python: its save_pretrained writes files our from_pretrained reads too."""
    return ("import sys, torch; from transformers import RobertaConfig, RobertaForSequenceClassification; "
            "torch.manual_seed(0); c = RobertaConfig(**{k: v for k, v in %r.items() if k != 'model_type'}, "
            "num_labels=2); RobertaForSequenceClassification(c).save_pretrained(sys.argv[1])" % (ROBERTA,))


def part_b(args):
    glue = Path(args.glue_dir) / "SST-2"
    if not (glue / "train.tsv").is_file() or not (TOKENIZER / "vocab.json").is_file():
        return f"Skipped: no SST-2 under {args.glue_dir} or no roberta-base tokenizer under {TOKENIZER}."
    tmp = Path(tempfile.mkdtemp(prefix="bench_sst2_"))
    try:
        model_dir = tmp / "model"
        run([args.peer_python, "-c", model_dir_code(), str(model_dir)], cwd="/")
        for name in ("vocab.json", "merges.txt", "tokenizer.json"):
            shutil.copy(TOKENIZER / name, model_dir / name)
        s = SST2
        rows, evals = args.train_rows, args.eval_rows

        def flags(**kw):  # --name value pairs; True alone makes a switch
            return [x for k, v in kw.items() if v is not None for x in ([f"--{k}"] if v is True else [f"--{k}", str(v)])]

        def common(out, train_rows):  # spelled alike by run_glue.py and hf_peft_glue.py
            return flags(max_train_samples=train_rows, num_train_epochs=1,
                         learning_rate=s["lr"], seed=s["seed"], max_seq_length=s["max_seq_length"],
                         weight_decay=s["weight_decay"], warmup_ratio=s["warmup_ratio"], lora_r=LORA_R,
                         lora_alpha=LORA_ALPHA, output_dir=out)

        def ours(extra, train_rows, eval_rows):
            out = tmp / f"ours{'_'.join(extra)}"
            cmd = [sys.executable, str(RUN_GLUE), *common(out, train_rows), *flags(
                max_val_samples=eval_rows or None, model_name_or_path=model_dir, task_name="sst2", data_dir=glue, do_train=True, do_eval=True,
                per_device_train_batch_size=s["batch"], per_device_eval_batch_size=s["eval_batch"], apply_lora=True,
                overwrite_output_dir=True, save_strategy="no", report_to="none", disable_tqdm="true"), *extra]
            wall, rss, _ = run(cmd, cwd=str(tmp))
            res = json.loads((out / "all_results.json").read_text())
            return dict(train=res["train_runtime"], eval=res["eval_runtime"], wall=wall, rss=rss,
                        acc=res["eval_accuracy"], train_rows=train_rows, eval_rows=res["eval_samples"])

        def peer(train_rows, eval_rows):
            cmd = [args.peer_python, str(HF_GLUE), *common(tmp / "peer", train_rows), *flags(
                max_eval_samples=eval_rows or None, model_dir=model_dir, glue_dir=args.glue_dir, task="sst2", batch_size=s["batch"],
                eval_batch_size=s["eval_batch"], device=args.device, out_json=tmp / "peer.json")]
            wall, rss, _ = run(cmd, cwd=str(tmp))
            res = json.loads((tmp / "peer.json").read_text())
            return dict(train=res["train_seconds"], eval=res["eval_seconds"], wall=wall, rss=rss,
                        acc=res["accuracy"], train_rows=train_rows, eval_rows=res["dev_samples"])

        runs = {}
        order = [("ours (dynamic padding)", lambda: ours([], rows, evals)),
                 ("peer: HF Trainer + PEFT", lambda: peer(rows, evals)),
                 ("ours --pack_tokens false", lambda: ours(["--pack_tokens", "false"], rows, evals)),
                 ("ours --group_by_length", lambda: ours(["--group_by_length"], rows, evals)),
                 ("ours --pad_to_max_length --pack_tokens false (fork)",
                  lambda: ours(["--pad_to_max_length", "--pack_tokens", "false"], args.pad_rows, args.pad_rows))]
        for label, fn in order:
            runs[label] = fn()
            print(f"  b {label}: {runs[label]}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = runs["ours (dynamic padding)"]
    table = ["| run | train rows | s / train row | epoch train s | dev rows | eval s / dev row | dev accuracy | "
             "wall s | peak RSS MiB | ours dynamic speed-up (train) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in runs.items():
        per_row = r["train"] / r["train_rows"]
        table.append(f"| {label} | {r['train_rows']} | {per_row:.3f} | {r['train']:.1f} | {r['eval_rows']} | "
                     f"{r['eval'] / r['eval_rows']:.4f} | {r['acc']:.4f} | {r['wall']:.1f} | {r['rss']:.0f} | "
                     f"{per_row / (base['train'] / base['train_rows']):.2f}x |")
    note = (f"First {rows} SST-2 training rows, one epoch, then {base['eval_rows']} dev rows; the pad-to-512 run "
            f"uses the first {args.pad_rows} training and dev rows only (all of them would take an hour here), so "
            "its speed-up is per training row and its accuracy is on that small dev subset.")
    return note + "\n\n" + "\n".join(table)


def part_c(args):
    base = dict(kind="merged", device=args.device, batch=args.eval_batch, length=args.length, warmup=1,
                steps=args.steps, model="RoBERTa-base")
    times = {("ours", "plain"): [], ("ours", "merged"): [], ("peer", "plain"): [], ("peer", "merged"): []}
    for r in range(args.rounds):
        for side, python in sides(args, r):
            out = run_worker(python, base)
            for key in ("plain", "merged"):
                times[side, key] += out[key]
    rate = {k: args.eval_batch / statistics.median(v) for k, v in times.items()}
    rows = ["| side | no LoRA (seq/s) | merged LoRA (seq/s) | merged / no LoRA |", "|---|---|---|---|"]
    for side in ("ours", "peer"):
        p, m = rate[side, "plain"], rate[side, "merged"]
        rows.append(f"| {side} | {p:.1f} | {m:.1f} | {m / p:.3f} |")
    return (f"RoBERTa-base eval forward, batch {args.eval_batch} x {args.length}, median of "
            f"{len(times['ours', 'plain'])} passes each, plain and merged interleaved; ours plain vs peer plain "
            f"{rate['ours', 'plain'] / rate['peer', 'plain']:.2f}x.\n\n" + "\n".join(rows))


def part_d(args):
    cmds = {
        ("ours", "import"): [sys.executable, "-c", "import transformers"],
        ("ours", "help"): [sys.executable, str(RUN_GLUE), "--help"],
        ("peer", "import"): [args.peer_python, "-c", "import transformers"],
        ("peer", "help"): [args.peer_python, "-c", "from transformers import HfArgumentParser, Trainer, "
                                                   "TrainingArguments"],
    }
    times = {k: [] for k in cmds}
    for r in range(args.startup_runs):
        for side, _ in sides(args, r):
            for what in ("import", "help"):
                times[side, what].append(run(cmds[side, what], cwd="/")[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = ["| command | ours s | peer s | targets |", "|---|---|---|---|",
            f"| `python -c \"import transformers\"` | {med['ours', 'import']:.2f} | {med['peer', 'import']:.2f} | "
            "ours <= 0.5 s |",
            f"| `run_glue.py --help` (peer: import HfArgumentParser, Trainer, TrainingArguments) | "
            f"{med['ours', 'help']:.2f} | {med['peer', 'help']:.2f} | ours <= 1.0 s |"]
    return (f"Median of {args.startup_runs} runs each (load average {os.getloadavg()[0]:.1f} when they ended).\n\n"
            + "\n".join(rows))


def versions(python):
    code = ("import importlib.metadata as m\nfor p in ('transformers', 'peft', 'torch'):\n    try: print(p, m.version(p))"
            "\n    except m.PackageNotFoundError: pass")
    return ", ".join(run([python, "-c", code], cwd="/")[2].split("\n")[:3]).strip(", ")


def write_section(path, section, text):
    """Replace `section` (up to the next '## ' heading) in the markdown file at path, or append it."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if section + "\n" in old:
        head, _, rest = old.partition(section + "\n")
        tail = rest[rest.find("\n## "):] if "\n## " in rest else ""
        old = head.rstrip("\n") + "\n" + tail
    path.write_text(old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--peer-python", default=os.environ.get("LORA_PEER_PYTHON", "/tmp/hf/bin/python"),
                   help="python of a venv with stock transformers + peft (env LORA_PEER_PYTHON)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--parts", default="abcd", help="which parts to run (e is read from a and b)")
    p.add_argument("--quick", action="store_true", help="1 round, 400 SST-2 rows, 200 dev rows, 16 pad rows")
    p.add_argument("--rounds", type=int, default=None, help="alternating rounds of a and c (default 2; quick 1)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per worker after warm-up (>= 5)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--length", type=int, default=128)
    p.add_argument("--eval_batch", type=int, default=32, help="part c batch")
    p.add_argument("--glue_dir", default=str(REPO.parent / "shared" / "data" / "glue"))
    p.add_argument("--train_rows", type=int, default=None, help="part b training rows (default 2000; quick 400)")
    p.add_argument("--eval_rows", type=int, default=None, help="part b dev rows (default all 872; quick 200)")
    p.add_argument("--pad_rows", type=int, default=None, help="rows of the pad-to-512 run (default 48; quick 16)")
    p.add_argument("--startup_runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=None,
                   help="OMP_NUM_THREADS of every process (default: torch's); 1 keeps ratios steadier on a busy CPU")
    p.add_argument("--write", action="store_true", help="write the tables to benchmarks/RESULTS.md")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by every worker and run
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.train_rows = args.train_rows or (400 if args.quick else 2000)
    args.eval_rows = args.eval_rows or (200 if args.quick else 0)
    args.pad_rows = args.pad_rows or (16 if args.quick else 48)
    if args.device == "cuda":  # a GPU does in seconds what takes minutes here: more work per measurement
        args.batch, args.eval_batch = args.batch * 2, args.eval_batch * 4
    if not os.path.isfile(args.peer_python):
        sys.exit(f"bench.py: no peer python at {args.peer_python}: pass --peer-python or set LORA_PEER_PYTHON "
                 "(python3 -m venv /tmp/hf && /tmp/hf/bin/pip install torch==2.13.0 transformers peft protobuf)")

    start = time.time()
    loads = [os.getloadavg()[0]]
    sections = []
    for part, title, fn in (("a", "a+e. LoRA training step", part_a), ("b", "b+e. SST-2 epoch + dev evaluation", part_b),
                            ("c", "c. Merged-LoRA evaluation", part_c), ("d", "d. Start-up", part_d)):
        if part in args.parts:
            print(f"part {part} ...", flush=True)
            sections.append(f"### {title}\n\n{fn(args)}")
            loads.append(os.getloadavg()[0])
    ours, peer = versions(sys.executable), versions(args.peer_python)
    header = (f"{SECTION}\n\n`python benchmarks/bench.py {' '.join(sys.argv[1:])}` on "
              f"{datetime.date.today().isoformat()}: {os.cpu_count()}-core {cpu_name()}, device {args.device}, "
              f"{(time.time() - start) / 60:.0f} min. Ours: this package ({ours}); peer: {peer}. "
              f"Other jobs shared the CPU: 1-min load average {min(loads):.1f}-{max(loads):.1f} at the part "
              "boundaries (`uptime`), so absolute times are rough; ratios come from this one invocation, with the "
              "two sides alternating. speed-up = peer time / ours time.")
    text = header + "\n\n" + "\n\n".join(sections)
    print(text)
    if args.write:
        write_section(REPO / "benchmarks" / "RESULTS.md", SECTION if args.device == "cpu" else
                      f"{SECTION} ({args.device})", text.replace(SECTION, SECTION if args.device == "cpu" else
                                                                 f"{SECTION} ({args.device})", 1))


if __name__ == "__main__":
    main()
