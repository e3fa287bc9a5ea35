#!/usr/bin/env bash
# GPU check (issue 9 part 6), one prepared run of a few minutes on a CUDA machine:
#   1. DDP equivalence: N GPUs x per-device batch B == 1 GPU x batch B x accumulation N (LoRA tensors compared);
#   2. fp32, --fp16 (autocast + GradScaler) and --bf16 runs of a RoBERTa-base-shaped random model with LoRA r=8 on
#      a made-up SST-2-layout task: train loss, eval accuracy, samples/s, skipped fp16 steps;
# and a summary table on stdout and in $OUT/gpu_check.md (paste it into benchmarks/RESULTS.md).
#
#   bash benchmarks/gpu_check.sh [OUT]      (OUT: $OUT, else ./gpu_check_out; NGPU: all visible GPUs)
# A smoke test of the script itself on a CPU: NGPU=2 PRECISIONS="fp32 bf16" HIDDEN=32 LAYERS=2 HEADS=2 (gloo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-${OUT:-./gpu_check_out}}"
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
EX="$ROOT/examples/text-classification"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 CUBLAS_WORKSPACE_CONFIG=:16:8
NGPU="${NGPU:-$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())')}"
PRECISIONS="${PRECISIONS:-fp32 fp16 bf16}"
HIDDEN="${HIDDEN:-768}" LAYERS="${LAYERS:-12}" HEADS="${HEADS:-12}"
[ "$NGPU" -ge 1 ] || { echo "gpu_check.sh: no CUDA device visible: run it on a GPU machine" >&2; exit 1; }
mkdir -p "$OUT"

# a RoBERTa-base shape (12 x 768, 12 heads, 3072) with a 2,000-token BPE vocabulary trained on the made-up task
"$PYTHON" - "$OUT" "$EX" "$HIDDEN" "$LAYERS" "$HEADS" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
import make_tiny
out, (hidden, layers, heads) = sys.argv[1], map(int, sys.argv[3:6])
texts = make_tiny.write_sst2_like(f"{out}/SST-2", 2048, 512, 64)
vocab = make_tiny.train_tokenizer(texts, f"{out}/model", vocab_size=2000, model_max_length=128)
make_tiny.make_model(f"{out}/model", vocab, hidden_size=hidden, layers=layers, heads=heads, max_seq_length=128)
EOF
# make_model gives intermediate 4 x hidden = 3072, as roberta-base

run() {  # run NAME NPROC ACCUM EXTRA...
    local name=$1 nproc=$2 accum=$3; shift 3
    "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$nproc" "$EX/run_glue.py" \
        --model_name_or_path "$OUT/model" --task_name sst2 --data_dir "$OUT/SST-2" --output_dir "$OUT/$name" \
        --overwrite_output_dir --do_train --do_eval --apply_lora --lora_r 8 --lora_alpha 16 --max_seq_length 128 \
        --per_device_train_batch_size 16 --gradient_accumulation_steps "$accum" --per_device_eval_batch_size 64 \
        --learning_rate 5e-4 --warmup_ratio 0.06 --seed 0 --report_to none --save_strategy no \
        --logging_steps 20 --disable_tqdm true "$@" > "$OUT/$name.log" 2>&1 \
        || { echo "gpu_check.sh: run $name failed, see $OUT/$name.log" >&2; tail -20 "$OUT/$name.log" >&2; exit 1; }
}

# 1. DDP equivalence: dropout off, 16 x NGPU rows = one optimizer step per epoch, so data order cannot matter
EQ=(--max_train_samples $((16 * NGPU)) --num_train_epochs 5 --use_deterministic_algorithms)
NODROP='{"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}'
"$PYTHON" - "$OUT/model" "$NODROP" <<'EOF'
import json, sys
path = f"{sys.argv[1]}/config.json"
config = json.load(open(path))
config.update(json.loads(sys.argv[2]))
json.dump(config, open(path, "w"), indent=2)
EOF
run ddp_1 1 "$NGPU" "${EQ[@]}"
if [ "$NGPU" -gt 1 ]; then run ddp_n "$NGPU" 1 "${EQ[@]}"; fi

# 2. precision runs (dropout stays off: the comparison is about arithmetic), 2 epochs of 2,048 rows
for prec in $PRECISIONS; do
    flag=(); [ "$prec" = fp32 ] || flag=(--"$prec")
    run "$prec" "$NGPU" 1 --num_train_epochs 2 "${flag[@]}"
done

"$PYTHON" - "$OUT" "$NGPU" $PRECISIONS <<'EOF'
import json, sys, torch
out, ngpu, precisions = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def lora(name):
    return torch.load(f"{out}/{name}/pytorch_model_lora.bin", weights_only=True, map_location="cpu")
def results(name):
    return json.load(open(f"{out}/{name}/all_results.json"))
device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (smoke test)"
rows = [f"# GPU check: {device} x {ngpu}, torch {torch.__version__}", ""]
if ngpu > 1:
    a, b = lora("ddp_1"), lora("ddp_n")
    diff = max((a[k].double() - b[k].double()).abs().max().item() for k in a)
    rows += [f"DDP: {ngpu} GPUs x batch 16 vs 1 GPU x batch 16 x accumulation {ngpu}, 5 steps: largest LoRA/head "
             f"difference {diff:.2e} (fp32, deterministic algorithms)", ""]
else:
    rows += ["DDP: one GPU visible, equivalence not checked", ""]
rows += ["| precision | train loss | eval accuracy | train samples/s | skipped fp16 steps |", "|---|---|---|---|---|"]
for prec in precisions:
    r = results(prec)
    rows.append(f"| {prec} | {r['train_loss']:.4f} | {r['eval_accuracy']:.4f} | {r['train_samples_per_second']:.1f} "
                f"| {r.get('train_fp16_skipped_steps', '-')} |")
text = "\n".join(rows) + "\n"
open(f"{out}/gpu_check.md", "w").write(text)
print(text)
EOF
