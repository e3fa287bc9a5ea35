#!/usr/bin/env bash
# RoBERTa-large + LoRA on CoLA.
# The fork's roberta_large_cola.sh, fixed. Environment, fixes, paper differences: scripts/README.md.
. "$(dirname "${BASH_SOURCE[0]}")/lib/glue_common.sh"
glue_job roberta-large cola 8  # model, task, the fork's GPU count
roberta_lora  # (the fork's roberta-large scripts do not pass --overwrite_output_dir: a rerun resumes)
hp max_seq_length 128 per_device_train_batch_size 4 learning_rate 3e-4 num_train_epochs 20
paper learning_rate 2e-4  # Table 9 (microsoft/LoRA#149)
glue_launch "$@"
