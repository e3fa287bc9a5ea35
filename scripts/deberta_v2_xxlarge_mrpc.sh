#!/usr/bin/env bash
# DeBERTa-V2-XXLarge + LoRA on MRPC.
# The fork's deberta_v2_xxlarge_mrpc.sh, fixed. Environment, fixes, paper differences: scripts/README.md.
. "$(dirname "${BASH_SOURCE[0]}")/lib/glue_common.sh"
glue_job microsoft/deberta-v2-xxlarge mrpc 8  # model, task, the fork's GPU count
deberta_lora  # Table 10 (PRESET=paper): r 8, alpha 8, warmup ratio 0.1 instead of warmup steps
hp max_seq_length 128 per_device_train_batch_size 32 learning_rate 2e-4 num_train_epochs 30
hp warmup_ratio 0.1 cls_dropout 0 weight_decay 0.01
every_steps 10
warm_start
glue_launch "$@"
