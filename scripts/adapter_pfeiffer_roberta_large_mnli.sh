#!/usr/bin/env bash
# RoBERTa-large + Pfeiffer adapters (bottleneck 16) on MNLI.
# The fork's adapter_pfeiffer_roberta_large_mnli.sh, fixed. Environment, fixes, paper differences: scripts/README.md.
. "$(dirname "${BASH_SOURCE[0]}")/lib/glue_common.sh"
glue_job roberta-large mnli 8  # model, task, the fork's GPU count
switch do_train do_eval overwrite_output_dir apply_adapter
hp evaluation_strategy epoch save_strategy epoch logging_steps 10 warmup_ratio 0.1
hp max_seq_length 128 per_device_train_batch_size 32 per_device_eval_batch_size 32 learning_rate 3e-4 num_train_epochs 5
hp adapter_type pfeiffer adapter_size 16
paper warmup_ratio 0.06  # Table 9, Adpt^P (0.8M)
glue_launch "$@"
