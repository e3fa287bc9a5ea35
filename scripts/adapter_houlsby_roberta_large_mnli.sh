#!/usr/bin/env bash
# RoBERTa-large + Houlsby adapters (bottleneck 8) on MNLI.
# The fork's adapter_houlsby_roberta_large_mnli.sh with the fixes listed in scripts/README.md.
# Environment (NUM_GPUS, GLUE_DIR, OUTPUT_ROOT, PRESET, ...): scripts/README.md. Arguments given to this
# script are appended to the list below and win over it.
MODEL=${MODEL:-roberta-large}
SEED=${SEED:-0}
FORK_GPUS=8  # the fork's GPU count: the global batch kept is FORK_GPUS x --per_device_train_batch_size
. "$(dirname "${BASH_SOURCE[0]}")/lib/launch.sh"  # checks PRESET; sets OUTPUT_DIR (the run folder), MNLI_LORA

# PRESET=paper: Table 9, Adpt^H (0.8M)
warmup_ratio=0.1 num_train_epochs=5
if [ "${PRESET:-fork}" = paper ]; then
    warmup_ratio=0.06 num_train_epochs=10
fi

args=(
    --model_name_or_path "$MODEL"
    --task_name mnli
    ${GLUE_DIR:+--data_dir "$GLUE_DIR/MNLI"}  # with GLUE_DIR only; else the Hub's glue
    --output_dir "$OUTPUT_DIR/model"
    --logging_dir "$OUTPUT_DIR/log"
    --seed "$SEED"
    --do_train
    --do_eval
    --overwrite_output_dir
    --apply_adapter
    --evaluation_strategy epoch
    --save_strategy epoch
    --logging_steps 10
    --warmup_ratio "$warmup_ratio"
    --max_seq_length 128
    --per_device_train_batch_size 32
    --per_device_eval_batch_size 32
    --learning_rate 3e-4
    --num_train_epochs "$num_train_epochs"
    --adapter_type houlsby
    --adapter_size 8
)
glue_launch "${args[@]}" -- "$@"
