#!/usr/bin/env bash
# DeBERTa-V2-XXLarge + LoRA on RTE.
# The fork's deberta_v2_xxlarge_rte.sh, fixed. Environment, fixes, paper differences: scripts/README.md.
. "$(dirname "${BASH_SOURCE[0]}")/lib/glue_common.sh"
glue_job microsoft/deberta-v2-xxlarge rte 8  # model, task, the fork's GPU count
deberta_lora  # Table 10 (PRESET=paper): r 8, alpha 8, warmup ratio 0.1 instead of warmup steps
hp max_seq_length 320 per_device_train_batch_size 4 learning_rate 2.6e-4 num_train_epochs 11
hp warmup_steps 50 cls_dropout 0.2 weight_decay 0.01
every_steps 20
warm_start
paper learning_rate 2e-4  # Table 10
glue_launch "$@"
