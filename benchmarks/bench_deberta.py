"""DeBERTa-V2 attention speed: this package against Hugging Face transformers, forward + backward (CPU or GPU).

The two packages share the import name `transformers`, so each runs in its own interpreter (one per venv); both
build the same configuration from the same weights and inputs, and the parent prints milliseconds side by side.

    python benchmarks/bench_deberta.py --ours /tmp/dev/bin/python --hf /tmp/hf/bin/python [--write]

    python benchmarks/bench_deberta.py --device cuda --batch_scale 8 --write      # on a GPU machine

--write appends the table to benchmarks/RESULTS.md under "## DeBERTa-V2 attention" (the device appended when it is
not the CPU), replacing an older copy of that section only. The configuration is deberta-v3-base's attention
(768 hidden, 12 heads, 256 log buckets over 512 positions, shared keys, c2p|p2c, LayerNorm'd relative embeddings)
with fewer layers to fit CPU time.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = dict(vocab_size=1000, hidden_size=768, num_hidden_layers=2, num_attention_heads=12, intermediate_size=3072,
              max_position_embeddings=512, relative_attention=True, position_buckets=256, max_relative_positions=-1,
              share_att_key=True, pos_att_type="p2c|c2p", norm_rel_ebd="layer_norm", position_biased_input=False,
              type_vocab_size=0, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, num_labels=3)
SHAPES = [(8, 128), (4, 256), (2, 512)]  # (batch, length): ~1k tokens per step at each GLUE length
MODES = ("full", "lora")  # full fine-tuning; LoRA as run_glue --apply_lora trains it (HF side: PEFT)
SECTION = "## DeBERTa-V2 attention"


def inputs(torch, batch, length):
    g = torch.Generator().manual_seed(batch * 1000 + length)
    ids = torch.randint(4, CONFIG["vocab_size"], (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[batch // 2:, length * 3 // 4:] = 0  # padding in half of the rows
    ids[:, 0] = 1
    return ids, mask, torch.tensor([i % 3 for i in range(batch)])


LORA = dict(r=8, alpha=16)  # on query_proj/value_proj; everything but LoRA, pooler and classifier frozen


def build(torch, args, lora):
    from safetensors.torch import load_file, save_file
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification

    torch.manual_seed(0)
    ours = hasattr(DebertaV2Config(), "apply_lora")  # this package; Hugging Face's config has no fork flags
    extra = dict(apply_lora=True, lora_r=LORA["r"], lora_alpha=LORA["alpha"]) if lora and ours else {}
    model = DebertaV2ForSequenceClassification(DebertaV2Config(**CONFIG, **extra))
    if os.path.isfile(args.weights):
        model.load_state_dict(load_file(args.weights), strict=False)
    else:  # the first (ours, full) run writes the base weights every other run loads
        save_file({k: v.contiguous() for k, v in model.state_dict().items() if "lora_" not in k}, args.weights)
    if lora:
        if not ours:  # Hugging Face: PEFT adds the same LoRA layers (B = 0, so outputs start equal)
            from peft import LoraConfig, get_peft_model
            model = get_peft_model(model, LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=0.0,
                                                     target_modules=["query_proj", "value_proj"])).base_model.model
        for name, param in model.named_parameters():
            param.requires_grad = "lora_" in name or name.startswith(("pooler.", "classifier."))
    return model


def worker(args):
    import torch

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    result = {}
    for mode in MODES:
        model = build(torch, args, lora=mode == "lora").to(device)
        encoder = model.deberta.encoder
        attention = encoder.layer[0].attention.self
        for batch, length in SHAPES:
            batch *= args.batch_scale
            ids, mask, labels = (t.to(device) for t in inputs(torch, batch, length))
            model.eval()
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask).logits
            model.train()
            # the block's input carries a gradient in both modes (earlier layers are trainable either way)
            hidden = torch.randn(batch, length, CONFIG["hidden_size"], device=device, requires_grad=True)

            def attention_step():  # one disentangled self-attention block, each package's own mask/position set-up
                rel = encoder.get_rel_embedding()
                if hasattr(encoder, "relative_positions"):  # this package
                    keys = mask.bool()
                    out = attention(hidden, keys[:, None, None, :], keys[:, None, :, None].float(),
                                    encoder.relative_positions(length, hidden.device), rel)[0]
                else:  # Hugging Face transformers
                    out = attention(hidden, encoder.get_attention_mask(mask),
                                    relative_pos=encoder.get_rel_pos(hidden), rel_embeddings=rel)[0]
                out.sum().backward()

            def model_step():
                model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()

            row = {"logits": logits.tolist()}
            for name, step_fn in (("attention", attention_step), ("model", model_step)):
                times = []
                for step in range(args.warmup + args.repeat):
                    model.zero_grad(set_to_none=True)
                    sync()
                    start = time.perf_counter()
                    step_fn()
                    sync()
                    if step >= args.warmup:
                        times.append((time.perf_counter() - start) * 1000)
                row[name] = min(times)
            result[f"{mode} {batch}x{length}"] = row
    print(json.dumps(result))


def run_worker(python, weights, args):
    cmd = [python, __file__, "--worker", "--weights", weights, "--threads", str(args.threads),
           "--repeat", str(args.repeat), "--warmup", str(args.warmup), "--device", args.device,
           "--batch_scale", str(args.batch_scale)]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/")
    if out.returncode != 0:
        sys.exit(f"{python} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def fastest(best, new):
    """Per-cell minimum of two worker results (logits are identical across runs)."""
    if best is None:
        return new
    for key, row in new.items():
        for part in ("attention", "model"):
            best[key][part] = min(best[key][part], row[part])
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ours", default=sys.executable, help="python with this package installed")
    p.add_argument("--hf", default="/tmp/hf/bin/python", help="python with Hugging Face transformers installed")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda (GPU steps are timed with synchronisation)")
    p.add_argument("--batch_scale", type=int, default=1, help="multiply every batch size (e.g. 8 on a GPU)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="alternating ours/HF runs; each cell keeps its fastest")
    p.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--weights", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    for python in (args.ours, args.hf):
        if not os.path.isfile(python):
            sys.exit(f"no interpreter at {python}: pass --ours/--hf with the python of each venv")

    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "weights.safetensors")
        ours = hf = None
        for _ in range(args.rounds):  # alternate, so a shared machine's slow spells hit both sides alike
            ours = fastest(ours, run_worker(args.ours, weights, args))  # the first run writes the weights
            hf = fastest(hf, run_worker(args.hf, weights, args))

    import torch

    rows = ["| training | batch x length | attention ours (ms) | attention HF (ms) | speed-up | model ours (ms) | "
            "model HF (ms) | speed-up | max abs logit diff (eval) |", "|---|---|---|---|---|---|---|---|---|"]
    for key in ours:
        mode, shape = key.split()
        diff = (torch.tensor(ours[key]["logits"]) - torch.tensor(hf[key]["logits"])).abs().max().item()
        cells = []
        for part in ("attention", "model"):
            o, h = ours[key][part], hf[key][part]
            cells += [f"{o:.0f}", f"{h:.0f}", f"{h / o:.2f}x"]
        label = "full" if mode == "full" else f"LoRA r={LORA['r']}"
        rows.append(f"| {label} | {shape} | " + " | ".join(cells) + f" | {diff:.1e} |")
    table = "\n".join(rows)
    print(table)
    if args.write:
        where = f"CPU, {args.threads} threads" if args.device == "cpu" else args.device
        section = SECTION if args.device == "cpu" else f"{SECTION} ({args.device})"
        text = (f"{section}\n\n`python benchmarks/bench_deberta.py --write` ({where}, torch "
                f"{torch.__version__}, fastest of {args.repeat} train steps after {args.warmup} warm-up in each of "
                f"{args.rounds} alternating rounds per package; "
                "attention = one DisentangledSelfAttention block incl. each package's mask and relative-position "
                "set-up, model = the whole classifier). Model: "
                "deberta-v3-base attention (768 hidden, 12 heads, 256 log buckets / 512 positions, shared keys, "
                "c2p|p2c), 2 layers, dropout on, a quarter of the tokens padding in half the rows. HF = latest "
                "transformers (DebertaV2ForSequenceClassification) from the same weights. full = every weight "
                f"trains; LoRA = r={LORA['r']}, alpha={LORA['alpha']} on query_proj/value_proj (this package's "
                "apply_lora; PEFT's LoraConfig on the HF side), only LoRA, pooler and classifier train."
                "\n\n" + table + "\n")
        from bench import write_section  # benchmarks/bench.py, beside this file

        write_section(Path(__file__).resolve().parent / "RESULTS.md", section, text)


if __name__ == "__main__":
    main()
