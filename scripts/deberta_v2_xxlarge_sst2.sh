#!/usr/bin/env bash
# DeBERTa-V2-XXLarge + LoRA on SST-2.
# The fork's deberta_v2_xxlarge_sst2.sh, fixed. Environment, fixes, paper differences: scripts/README.md.
. "$(dirname "${BASH_SOURCE[0]}")/lib/glue_common.sh"
glue_job microsoft/deberta-v2-xxlarge sst2 8  # model, task, the fork's GPU count
deberta_lora  # Table 10 (PRESET=paper): r 8, alpha 8, warmup ratio 0.1 instead of warmup steps
hp max_seq_length 128 per_device_train_batch_size 8 learning_rate 6e-5 num_train_epochs 16
hp warmup_steps 1000 cls_dropout 0 weight_decay 0.01
every_steps 100
glue_launch "$@"
