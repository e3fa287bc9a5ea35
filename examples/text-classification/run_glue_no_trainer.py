#!/usr/bin/env python
"""Fine-tune a sequence classifier on a GLUE task (or on csv/json files), optionally with LoRA, in a plain training
loop on `accelerate` instead of the Trainer: the no_trainer script of transformers 4.4.2 plus the fork's LoRA flags.

    python run_glue_no_trainer.py --model_name_or_path roberta-base --task_name rte --data_dir glue_data/RTE \\
        --apply_lora --lora_r 8 --lora_alpha 16 --learning_rate 5e-4 --output_dir out/rte
    torchrun --nproc_per_node 2 run_glue_no_trainer.py ...   (or: accelerate launch run_glue_no_trainer.py ...)

Data loading, tokenization, labels and metrics are run_glue.py's. With --apply_lora only the LoRA tensors and the
head train. Every epoch ends with an evaluation on the validation set in which each example counts once, whatever
the number of processes. At the end the main process writes, in --output_dir, the model, the tokenizer,
pytorch_model_lora.bin (LoRA + head, for --lora_path) and all_results.json.
"""
import argparse
import contextlib
import inspect
import json
import logging
import math
import os
import sys

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

import transformers
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, HfArgumentParser, set_seed
from transformers import DataCollatorWithPadding, EvalPrediction, default_data_collator
from transformers.checkpointing import save_model_files
from transformers.lora import count_parameters, fork_trainable_rule
from transformers.method_loading import load_lora_state_dict
from transformers.optimization import AdamW, get_scheduler
from transformers.trainer_pt_utils import weight_decay_groups
from transformers.trainer_utils import SchedulerType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_glue  # noqa: E402 - the data handling of the Trainer script beside this one

PROG = "run_glue_no_trainer.py"
logger = logging.getLogger(__name__)


def fail(message):
    raise SystemExit(f"{PROG}: error: {message}")


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv=None):
    parser = HfArgumentParser([], prog=PROG, description=__doc__.splitlines()[0])  # one-line errors, no abbreviations
    parser.add_argument("--task_name", help="The GLUE task: " + ", ".join(run_glue.task_to_keys))
    parser.add_argument("--data_dir", help="A local folder of the task in the GLUE layout, instead of the Hub.")
    parser.add_argument("--train_file", help="A csv or json file of training data (without --task_name).")
    parser.add_argument("--validation_file", help="A csv or json file of validation data (without --task_name).")
    parser.add_argument("--max_length", type=positive, default=128, help="Longer inputs are truncated.")
    parser.add_argument("--pad_to_max_length", action="store_true",
                        help="Pad every example to --max_length rather than each batch to its longest one.")
    parser.add_argument("--model_name_or_path", required=True, help="Path to a pretrained model or its Hub id.")
    parser.add_argument("--use_slow_tokenizer", action="store_true", help="Use the Python tokenizer, not the fast one.")
    parser.add_argument("--per_device_train_batch_size", type=positive, default=8)
    parser.add_argument("--per_device_eval_batch_size", type=positive, default=8)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--weight_decay", type=float, default=0.0)
    parser.add_argument("--num_train_epochs", type=positive, default=3)
    parser.add_argument("--max_train_steps", type=positive, default=None,
                        help="Total optimizer steps; overrides --num_train_epochs.")
    parser.add_argument("--gradient_accumulation_steps", type=positive, default=1,
                        help="Batches whose gradients add up to one optimizer step.")
    parser.add_argument("--lr_scheduler_type", default="linear", choices=[s.value for s in SchedulerType])
    parser.add_argument("--num_warmup_steps", type=int, default=0)
    parser.add_argument("--output_dir", help="Where the trained model and results go (nothing is saved without it).")
    parser.add_argument("--seed", type=int, default=None, help="Seed for reproducible runs.")
    parser.add_argument("--apply_lora", action="store_true", help="Add LoRA to the attention query/value.")
    parser.add_argument("--lora_r", type=int, default=None, help="LoRA rank r.")
    parser.add_argument("--lora_alpha", type=int, default=None, help="LoRA alpha (scaling = alpha / r).")
    parser.add_argument("--lora_path", help="A LoRA checkpoint to start from (pytorch_model_lora.bin, ...).")
    args = parser.parse_args(argv)
    if args.lora_path is not None and not args.apply_lora:
        parser.error("--lora_path needs --apply_lora with the --lora_r/--lora_alpha it was trained with")
    try:  # run_glue.py's checks of the data flags (task name, file types)
        args.data = run_glue.DataTrainingArguments(
            task_name=args.task_name, data_dir=args.data_dir, train_file=args.train_file,
            validation_file=args.validation_file, max_seq_length=args.max_length,
            pad_to_max_length=args.pad_to_max_length)
    except ValueError as e:
        parser.error(str(e))
    return args


def from_run_glue(function, *args):
    """Call a run_glue.py helper; its one-line errors name this script."""
    try:
        return function(*args)
    except SystemExit as e:
        raise SystemExit(str(e.code).replace("run_glue.py:", f"{PROG}:", 1)) from None


def evaluate(model, dataloader, accelerator, compute_metrics, prefix):
    """Metrics over the whole split: gather_for_metrics drops the examples the last shards repeat to even out."""
    model.eval()
    logits, labels = [], []
    for batch in dataloader:
        with torch.no_grad():
            out = model(**batch).logits
        out, gold = accelerator.gather_for_metrics((out, batch["labels"]))
        logits.append(out.float().cpu())
        labels.append(gold.cpu())
    logits, labels = torch.cat(logits).numpy(), torch.cat(labels).numpy()
    metrics = compute_metrics(EvalPrediction(predictions=logits, label_ids=labels))
    metrics["samples"] = len(labels)
    return {f"{prefix}_{k}": v for k, v in metrics.items()}


def main(argv=None):
    args = parse_args(argv)
    # On a machine without CUDA, accelerate joins a torchrun process group only when told cpu=True; otherwise each
    # process would train alone on all of the data.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if accelerator.num_processes != launched:
        fail(f"launched as {launched} processes but accelerate joined {accelerator.num_processes}: run on CUDA or "
             "CPU devices (other accelerators are not supported by this script)")

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        level=logging.INFO if accelerator.is_main_process else logging.ERROR)
    if not accelerator.is_main_process:
        transformers.utils.logging.set_verbosity_error()
    logger.info(f"{accelerator.num_processes} process(es), device {accelerator.device}")
    if args.seed is not None:  # before the model is built: LoRA A matrices and the head are drawn from it
        set_seed(args.seed)

    task = args.data.task_name
    # load_datasets reads the cache folder and the splits wanted from these (the Trainer script's argument objects)
    wanted = argparse.Namespace(cache_dir=None, do_train=True, do_eval=True, do_predict=False)
    with accelerator.main_process_first():  # one process fills the datasets cache, the others read it
        raw = from_run_glue(run_glue.load_datasets, args.data, wanted, wanted)
    label_list = run_glue.labels_of(raw, task)
    num_labels = 1 if label_list is None else len(label_list)

    try:
        config = AutoConfig.from_pretrained(args.model_name_or_path, num_labels=num_labels, finetuning_task=task,
                                            apply_lora=args.apply_lora, lora_r=args.lora_r, lora_alpha=args.lora_alpha)
        tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path, use_fast=not args.use_slow_tokenizer)
        # tensors the --lora_path file fills (the head) are not reported as left at their initial values
        model, loading = AutoModelForSequenceClassification.from_pretrained(
            args.model_name_or_path, config=config, output_loading_info=True, defer_loading_report=True)
        if args.lora_path is not None:
            applied = load_lora_state_dict(model, args.lora_path)
            loading["loading_report"].supplied_by(args.lora_path, applied["loaded"])
    except (OSError, ValueError, RuntimeError) as e:
        fail(str(e).strip().splitlines()[0])
    loading["loading_report"].emit()
    if args.apply_lora and not any("lora_" in name for name, _ in model.named_parameters()):
        fail(f"--apply_lora: {type(model).__name__} has no LoRA layers ({config.model_type} does not implement them)")
    fork_trainable_rule(model, apply_lora=args.apply_lora)
    counts = count_parameters(model)
    logger.info(f"trainable parameters: {counts['trainable']:,} of {counts['total']:,}: lora {counts['lora']:,}, "
                f"head {counts['head']:,}")

    label_to_id = run_glue.label_mapping(model.config, label_list, task, num_labels)
    compute_metrics = run_glue.metrics_function(task, label_list is None,
                                                run_glue.positions_of_model_ids(label_to_id, task, num_labels))
    with accelerator.main_process_first():
        data = from_run_glue(run_glue.tokenize_datasets, raw, tokenizer, task, label_to_id, args.max_length,
                             args.pad_to_max_length)
    # the model's inputs and the label only: text columns and GLUE's idx would reach forward() otherwise
    inputs = set(inspect.signature(model.forward).parameters) | {"label"}
    data = {name: split.remove_columns([c for c in split.column_names if c not in inputs])
            for name, split in data.items()}
    collator = default_data_collator if args.pad_to_max_length else DataCollatorWithPadding(
        tokenizer, pad_to_multiple_of=8 if accelerator.mixed_precision == "fp16" else None)
    train_loader = DataLoader(data["train"], shuffle=True, collate_fn=collator,
                              batch_size=args.per_device_train_batch_size)
    # MNLI is evaluated on matched data each epoch, and on mismatched data too at the end
    evals = [("eval", "validation_matched" if task == "mnli" else "validation")]
    if task == "mnli":
        evals.append(("eval_mnli-mm", "validation_mismatched"))
    eval_loaders = [DataLoader(data[split], collate_fn=collator, batch_size=args.per_device_eval_batch_size)
                    for _, split in evals]

    optimizer = AdamW(weight_decay_groups(model, args.weight_decay), lr=args.learning_rate)
    model, optimizer, train_loader, *eval_loaders = accelerator.prepare(model, optimizer, train_loader, *eval_loaders)
    # counted after prepare, which gives each process its share of the batches
    steps_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
    max_train_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    epochs = math.ceil(max_train_steps / steps_per_epoch)
    lr_scheduler = get_scheduler(args.lr_scheduler_type, optimizer, num_warmup_steps=args.num_warmup_steps,
                                 num_training_steps=max_train_steps)

    logger.info(f"{len(data['train'])} training examples, {epochs} epoch(s), {max_train_steps} optimizer steps of "
                f"{args.per_device_train_batch_size} x {accelerator.num_processes} process(es) x "
                f"{args.gradient_accumulation_steps} accumulation examples")
    progress = tqdm(range(max_train_steps), disable=not accelerator.is_local_main_process)
    done, results = 0, {}
    for epoch in range(epochs):
        model.train()
        loss_sum = torch.zeros((), device=accelerator.device)
        for step, batch in enumerate(train_loader):
            update = (step + 1) % args.gradient_accumulation_steps == 0 or step == len(train_loader) - 1
            # gradients are averaged across processes only on the batch that ends an optimizer step
            with contextlib.nullcontext() if update else accelerator.no_sync(model):
                loss = model(**batch).loss
                accelerator.backward(loss / args.gradient_accumulation_steps)
            loss_sum += loss.detach()
            if update:
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
                progress.update(1)
                done += 1
                if done >= max_train_steps:
                    break
        results = {"epoch": epoch, "train_loss": accelerator.reduce(loss_sum / (step + 1), "mean").item()}
        results.update(evaluate(model, eval_loaders[0], accelerator, compute_metrics, evals[0][0]))
        logger.info(f"epoch {epoch}: {json.dumps(results)}")
    for (prefix, _), loader in zip(evals[1:], eval_loaders[1:]):
        results.update(evaluate(model, loader, accelerator, compute_metrics, prefix))
    progress.close()

    accelerator.wait_for_everyone()
    if args.output_dir is not None and accelerator.is_main_process:
        save_model_files(accelerator.unwrap_model(model), args.output_dir, tokenizer)
        with open(os.path.join(args.output_dir, "all_results.json"), "w", encoding="utf-8") as f:
            json.dump(results, f, indent=4, sort_keys=True)
        logger.info(f"model, pytorch_model_lora.bin and all_results.json written to {args.output_dir}")
    accelerator.end_training()
    return results


if __name__ == "__main__":
    main()
    from transformers.training_args import end_distributed_process

    end_distributed_process()  # under torchrun: every rank exits 0 once all is written, see its docstring
