#!/usr/bin/env bash
# RoBERTa-large + LoRA on MRPC, warm-started from the MNLI run's LoRA weights.
# The fork's roberta_large_mrpc.sh with the fixes listed in scripts/README.md.
# Environment (NUM_GPUS, GLUE_DIR, OUTPUT_ROOT, PRESET, ...): scripts/README.md. Arguments given to this
# script are appended to the list below and win over it.
MODEL=${MODEL:-roberta-large}
SEED=${SEED:-0}
FORK_GPUS=8  # the fork's GPU count: the global batch kept is FORK_GPUS x --per_device_train_batch_size
. "$(dirname "${BASH_SOURCE[0]}")/lib/launch.sh"  # checks PRESET; sets OUTPUT_DIR (the run folder), MNLI_LORA

args=(
    --model_name_or_path "$MODEL"
    --lora_path "$MNLI_LORA"                  # warm start: the LoRA weights of the MNLI run
    --task_name mrpc
    ${GLUE_DIR:+--data_dir "$GLUE_DIR/MRPC"}  # with GLUE_DIR only; else the Hub's glue
    --output_dir "$OUTPUT_DIR/model"
    --logging_dir "$OUTPUT_DIR/log"
    --seed "$SEED"
    --do_train
    --do_eval
    --apply_lora
    --evaluation_strategy epoch
    --save_strategy epoch
    --warmup_ratio 0.06
    --logging_steps 10
    --lora_r 8
    --lora_alpha 16
    --weight_decay 0.1
    # no --overwrite_output_dir, as in the fork: rerunning resumes from the newest checkpoint
    --max_seq_length 512
    --per_device_train_batch_size 4
    --learning_rate 3e-4
    --num_train_epochs 20
)
glue_launch "${args[@]}" -- "$@"
