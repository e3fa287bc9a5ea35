#!/usr/bin/env bash
# DeBERTa-V2-XXLarge + LoRA on MNLI with R-Drop (a second dropout pass, KL consistency).
# The fork's mnli.rdrop.sh with the fixes listed in scripts/README.md.
# Environment (NUM_GPUS, GLUE_DIR, OUTPUT_ROOT, PRESET, ...): scripts/README.md. Arguments given to this
# script are appended to the list below and win over it.
MODEL=${MODEL:-microsoft/deberta-v2-xxlarge}
SEED=${SEED:-42}
FORK_GPUS=8  # the fork's GPU count: the global batch kept is FORK_GPUS x --per_device_train_batch_size
. "$(dirname "${BASH_SOURCE[0]}")/lib/launch.sh"  # checks PRESET; sets OUTPUT_DIR (the run folder), MNLI_LORA

# PRESET=paper: R-Drop is not in the paper, so Table 10's MNLI column (r 8, alpha 8, warmup ratio 0.1)
lora_r=16 lora_alpha=32 warmup_steps=(--warmup_steps 1000) warmup_ratio=()
if [ "${PRESET:-fork}" = paper ]; then
    lora_r=8 lora_alpha=8 warmup_steps=() warmup_ratio=(--warmup_ratio 0.1)
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
    --fp16                                    # dropped when DEVICE=cpu
    --apply_lora
    --use_deterministic_algorithms
    --logging_steps 10
    --evaluation_strategy steps
    --save_strategy steps
    --lora_r "$lora_r"
    --lora_alpha "$lora_alpha"
    --max_seq_length 256
    --per_device_train_batch_size 8
    --learning_rate 1e-4
    --num_train_epochs 5
    "${warmup_steps[@]}"                      # none with PRESET=paper
    --cls_dropout 0.15
    --weight_decay 0
    --eval_steps 500
    --save_steps 500
    --reg_loss_wgt 1.0                        # R-Drop/Cutoff: weight of the consistency loss
    "${warmup_ratio[@]}"                      # PRESET=paper only
)
glue_launch "${args[@]}" -- "$@"
