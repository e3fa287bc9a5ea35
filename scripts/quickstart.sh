#!/usr/bin/env bash
# The README's main job end to end, offline on a CPU in about a minute: make a tiny random RoBERTa, its BPE
# tokenizer and an SST-2-like task in the GLUE layout; fine-tune with LoRA (train + eval); then evaluate again
# from the LoRA checkpoint alone (--lora_path) and check that the metrics are identical.
#
#   scripts/quickstart.sh [OUT]        (OUT defaults to $QUICKSTART_OUT, else ./quickstart_out; reruns overwrite)
#   PYTHON=/path/to/python scripts/quickstart.sh
set -euo pipefail

OUT="${1:-${QUICKSTART_OUT:-./quickstart_out}}"
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXAMPLES="$ROOT/examples/text-classification"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1  # nothing here needs the network
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"  # a 64-wide model runs fastest on one thread

"$PYTHON" "$EXAMPLES/make_tiny.py" --out "$OUT"

COMMON=(--model_name_or_path "$OUT/tiny-roberta" --task_name sst2 --data_dir "$OUT/data/SST-2"
        --apply_lora --lora_r 8 --lora_alpha 16 --max_seq_length 64 --per_device_eval_batch_size 64
        --seed 0 --report_to none --overwrite_output_dir)

echo "== fine-tune with LoRA: $OUT/train"
"$PYTHON" "$EXAMPLES/run_glue.py" "${COMMON[@]}" --output_dir "$OUT/train" --do_train --do_eval \
    --num_train_epochs 12 --per_device_train_batch_size 16 --learning_rate 5e-3 --warmup_ratio 0.06 \
    --logging_steps 32 --save_strategy no

echo "== evaluate again from $OUT/train/pytorch_model_lora.bin: $OUT/reeval"
"$PYTHON" "$EXAMPLES/run_glue.py" "${COMMON[@]}" --output_dir "$OUT/reeval" --do_eval \
    --lora_path "$OUT/train/pytorch_model_lora.bin"

"$PYTHON" - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
speed = ("_runtime", "_per_second")  # wall-clock numbers legitimately differ; "epoch" is the training run's
def metrics(run):
    with open(f"{out}/{run}/eval_results.json") as f:
        return {k: v for k, v in json.load(f).items() if k.startswith("eval_") and not k.endswith(speed)}
trained, reloaded = metrics("train"), metrics("reeval")
print("after training :", trained)
print("from lora_path :", reloaded)
assert trained == reloaded, "re-evaluation from the LoRA checkpoint differs"
print(f"OK: identical metrics; eval accuracy {trained['eval_accuracy']:.3f} (chance 0.5)")
EOF
