#!/usr/bin/env bash
# DeBERTa-V2-XXLarge + LoRA on CoLA.
# The fork's deberta_v2_xxlarge_cola.sh with the fixes listed in scripts/README.md.
# Environment (NUM_GPUS, GLUE_DIR, OUTPUT_ROOT, PRESET, ...): scripts/README.md. Arguments given to this
# script are appended to the list below and win over it.
MODEL=${MODEL:-microsoft/deberta-v2-xxlarge}
SEED=${SEED:-0}
FORK_GPUS=8  # the fork's GPU count: the global batch kept is FORK_GPUS x --per_device_train_batch_size
. "$(dirname "${BASH_SOURCE[0]}")/lib/launch.sh"  # checks PRESET; sets OUTPUT_DIR (the run folder), MNLI_LORA

# PRESET=paper, Table 10: r_q = r_v = 8, alpha 8, lr 1e-4, a warmup ratio of 0.1 in place of warmup steps
lora_r=16 lora_alpha=32 learning_rate=1.3e-4 warmup_steps=(--warmup_steps 100) warmup_ratio=()
if [ "${PRESET:-fork}" = paper ]; then
    lora_r=8 lora_alpha=8 learning_rate=1e-4 warmup_steps=() warmup_ratio=(--warmup_ratio 0.1)
fi

args=(
    --model_name_or_path "$MODEL"
    --task_name cola
    ${GLUE_DIR:+--data_dir "$GLUE_DIR/CoLA"}  # with GLUE_DIR only; else the Hub's glue
    --output_dir "$OUTPUT_DIR/model"
    --logging_dir "$OUTPUT_DIR/log"
    --seed "$SEED"
    --do_train
    --do_eval
    --overwrite_output_dir
    --fp16                                    # dropped when DEVICE=cpu
    --apply_lora
    --use_deterministic_algorithms
    --logging_steps 10
    --evaluation_strategy steps
    --save_strategy steps
    --lora_r "$lora_r"
    --lora_alpha "$lora_alpha"
    --max_seq_length 64
    --per_device_train_batch_size 4
    --learning_rate "$learning_rate"
    --num_train_epochs 10
    "${warmup_steps[@]}"                      # none with PRESET=paper
    --cls_dropout 0.1
    --weight_decay 0
    --eval_steps 20
    --save_steps 20
    "${warmup_ratio[@]}"                      # PRESET=paper only
)
glue_launch "${args[@]}" -- "$@"
