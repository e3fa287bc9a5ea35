#!/usr/bin/env bash
# RoBERTa-base + LoRA on QQP.
# The fork's roberta_base_qqp.sh, fixed. Environment, fixes, paper differences: scripts/README.md.
. "$(dirname "${BASH_SOURCE[0]}")/lib/glue_common.sh"
glue_job roberta-base qqp 8  # model, task, the fork's GPU count
roberta_lora
switch overwrite_output_dir
hp max_seq_length 512 per_device_train_batch_size 16 learning_rate 5e-4 num_train_epochs 25
paper lora_alpha 8  # Table 9: RoBERTa-base LoRA alpha 8
glue_launch "$@"
