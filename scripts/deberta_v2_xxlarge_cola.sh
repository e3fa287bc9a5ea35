#!/usr/bin/env bash
# DeBERTa-V2-XXLarge + LoRA on CoLA.
# The fork's deberta_v2_xxlarge_cola.sh, fixed. Environment, fixes, paper differences: scripts/README.md.
. "$(dirname "${BASH_SOURCE[0]}")/lib/glue_common.sh"
glue_job microsoft/deberta-v2-xxlarge cola 8  # model, task, the fork's GPU count
deberta_lora  # Table 10 (PRESET=paper): r 8, alpha 8, warmup ratio 0.1 instead of warmup steps
hp max_seq_length 64 per_device_train_batch_size 4 learning_rate 1.3e-4 num_train_epochs 10
hp warmup_steps 100 cls_dropout 0.1 weight_decay 0
every_steps 20
paper learning_rate 1e-4  # Table 10
glue_launch "$@"
