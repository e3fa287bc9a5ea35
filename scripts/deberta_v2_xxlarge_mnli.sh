#!/usr/bin/env bash
# DeBERTa-V2-XXLarge + LoRA on MNLI.
# The fork's deberta_v2_xxlarge_mnli.sh, fixed. Environment, fixes, paper differences: scripts/README.md.
. "$(dirname "${BASH_SOURCE[0]}")/lib/glue_common.sh"
glue_job microsoft/deberta-v2-xxlarge mnli 8  # model, task, the fork's GPU count
deberta_lora  # Table 10 (PRESET=paper): r 8, alpha 8, warmup ratio 0.1 instead of warmup steps
hp max_seq_length 256 per_device_train_batch_size 8 learning_rate 1e-4 num_train_epochs 5
hp warmup_steps 1000 cls_dropout 0.15 weight_decay 0
every_steps 500
glue_launch "$@"
