#!/usr/bin/env python
"""Fine-tune a sequence classifier on a GLUE task (or on your own csv/json files), optionally with LoRA, adapters
or BitFit: the command line of the LoRA paper's NLU fork of transformers 4.4.2.

Data comes from the Hub (`--task_name sst2`), from a local copy of the GLUE distribution
(`--task_name sst2 --data_dir glue_data/SST-2`) or from `--train_file/--validation_file[/--test_file]`.

Padding is dynamic by default (each batch is padded to its longest sequence; 4.4.2 defaulted to padding).
`--pad_to_max_length` pads every example to `--max_seq_length` instead: the attention mask hides the padding, so
results are the same up to float rounding, only slower.

Outputs in --output_dir: the model, `pytorch_model_lora.bin` (LoRA + head tensors, reload with `--lora_path`),
`pytorch_model_adapter.bin` (adapters + head, reload with `--adapter_path`, which also reads AdapterHub folders),
trainer_state.json, train/eval results (MNLI: eval_results.json for matched, eval_mnli-mm_results.json for
mismatched), all_results.json, and with --do_predict test_results_<task>.txt plus the GLUE server file
(e.g. SST-2.tsv, MNLI-m.tsv/MNLI-mm.tsv). An MNLI run also predicts GLUE's diagnostic set with its model, as the
GLUE server expects (AX.tsv, test_results_ax.txt): the Hub's glue/ax, or with --data_dir the diagnostic/ (or AX/)
folder beside the MNLI one, as in the GLUE distribution (glue_data/MNLI, glue_data/diagnostic).
"""
import logging
import os
import random
import re
import sys
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

# Only what parsing the arguments needs is imported here: torch, datasets, tokenizers and the models come in main()
# once the arguments are known, so that --help and a bad flag answer at once.
import transformers
from transformers import EvalPrediction, HfArgumentParser, PretrainedConfig, TrainingArguments
from transformers.data.glue import (
    GLUE_TASK_TO_KEYS,
    GlueDataError,
    glue_ax_dir,
    glue_compute_metrics,
    glue_submission,
    load_glue,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, CheckpointSaveError, NonFiniteLoss, get_last_checkpoint

task_to_keys = {task: keys for task, keys in GLUE_TASK_TO_KEYS.items() if task != "ax"}  # ax has no train set

logger = logging.getLogger(__name__)


def fail(message):
    """End the run with one line on stderr and exit status 1."""
    raise SystemExit(f"run_glue.py: error: {message}")


@dataclass
class DataTrainingArguments:
    task_name: Optional[str] = field(
        default=None, metadata={"help": "The GLUE task to train on: " + ", ".join(task_to_keys)}
    )
    data_dir: Optional[str] = field(
        default=None,
        metadata={"help": "A local folder of the task in the original GLUE layout (e.g. glue_data/SST-2), used "
                          "instead of the Hub."},
    )
    max_seq_length: int = field(
        default=128, metadata={"help": "Tokenized inputs longer than this are truncated."}
    )
    overwrite_cache: bool = field(
        default=False, metadata={"help": "Tokenize again even when the datasets cache already holds the result."}
    )
    pad_to_max_length: bool = field(
        default=False,
        metadata={"help": "Pad every example to max_seq_length rather than each batch to its longest example "
                          "(same results, slower)."},
    )
    max_train_samples: Optional[int] = field(
        default=None, metadata={"help": "Use only the first this many training examples."}
    )
    max_val_samples: Optional[int] = field(
        default=None, metadata={"help": "Use only the first this many validation examples."}
    )
    max_test_samples: Optional[int] = field(
        default=None, metadata={"help": "Use only the first this many test examples."}
    )
    train_file: Optional[str] = field(default=None, metadata={"help": "A csv or json file of training data."})
    validation_file: Optional[str] = field(default=None, metadata={"help": "A csv or json file of validation data."})
    test_file: Optional[str] = field(default=None, metadata={"help": "A csv or json file of test data."})

    def __post_init__(self):
        for name in ("max_train_samples", "max_val_samples", "max_test_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.task_name is not None:
            key = self.task_name.lower().replace("-", "").replace("_", "")  # also accept SST-2, STS-B, ...
            if key == "ax":
                raise ValueError("ax has no training data: GLUE scores it with the MNLI model, which --task_name "
                                 "mnli --do_predict applies to it (AX.tsv)")
            if key not in task_to_keys:
                raise ValueError(f"unknown task {self.task_name!r}: pick one of {', '.join(task_to_keys)}")
            self.task_name = key
        elif self.data_dir is not None:
            raise ValueError("--data_dir needs --task_name (the GLUE task stored there)")
        elif self.train_file is None or self.validation_file is None:
            raise ValueError("need either --task_name or both --train_file and --validation_file")
        else:
            extensions = {os.path.splitext(f)[1] for f in (self.train_file, self.validation_file, self.test_file) if f}
            if len(extensions) != 1 or extensions - {".csv", ".json"}:
                raise ValueError("--train_file/--validation_file/--test_file must all be .csv or all be .json")


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "Path to a pretrained model or its Hub id."})
    config_name: Optional[str] = field(default=None, metadata={"help": "Config name or path, if not the model's."})
    tokenizer_name: Optional[str] = field(
        default=None, metadata={"help": "Tokenizer name or path, if not the model's."}
    )
    cache_dir: Optional[str] = field(default=None, metadata={"help": "Where downloads from the Hub are stored."})
    use_fast_tokenizer: bool = field(default=True, metadata={"help": "Use a fast (tokenizers-backed) tokenizer."})
    model_revision: str = field(default="main", metadata={"help": "Model version: branch, tag or commit id."})
    use_auth_token: bool = field(default=False, metadata={"help": "Use the stored Hub token (private models)."})
    apply_lora: Optional[bool] = field(default=False, metadata={"help": "Add LoRA to the attention query/value."})
    lora_alpha: Optional[int] = field(default=None, metadata={"help": "LoRA alpha (scaling = alpha / r)."})
    lora_r: Optional[int] = field(default=None, metadata={"help": "LoRA rank r."})
    lora_path: Optional[str] = field(
        default=None, metadata={"help": "A LoRA checkpoint to start from: pytorch_model_lora.bin / model_lora."
                                        "safetensors, a PEFT adapter folder, or a save folder holding either."}
    )
    apply_adapter: Optional[bool] = field(default=False, metadata={"help": "Add adapters."})
    adapter_path: Optional[str] = field(
        default=None, metadata={"help": "Adapters to start from: an AdapterHub folder (pytorch_adapter.bin + "
                                        "pytorch_model_head.bin), pytorch_model_adapter.bin, or a save folder."})
    adapter_type: Optional[str] = field(
        default="houlsby", metadata={"help": "Adapter layout: houlsby (after attention and after the feed-forward "
                                             "block) or pfeiffer (after the feed-forward block only)."})
    adapter_size: Optional[int] = field(default=64, metadata={"help": "Adapter bottleneck size: 8, 16, 32, 64"})
    apply_bitfit: Optional[bool] = field(default=False, metadata={"help": "Train only the biases (BitFit)."})
    reg_loss_wgt: Optional[float] = field(default=0.0, metadata={"help": "Regularization loss weight."})
    masking_prob: Optional[float] = field(default=0.0, metadata={"help": "Token masking probability."})
    ignore_mismatched_sizes: bool = field(
        default=False,
        metadata={"help": "Re-initialise checkpoint tensors whose shape differs from the model's (e.g. the head of "
                          "a model fine-tuned with another number of labels)."},
    )
    pack_tokens: bool = field(
        default=True,
        metadata={"help": "Run the per-token layers on the real tokens of each padded batch only (same results, "
                          "less work); false computes the padding too, as 4.4.2 and the fork do."},
    )


def write_atomic(path, text):
    """Write a whole file or nothing: a crash never leaves a half-written result behind."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)  # a --do_predict-only run has not made output_dir
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def load_datasets(data_args, model_args, training_args):
    if data_args.task_name is not None:
        needed = None
        if data_args.data_dir is not None:  # read only what this run uses, and name a missing file up front
            mnli = data_args.task_name == "mnli"
            needed = (["train"] if training_args.do_train else []) + (
                (["validation_matched", "validation_mismatched"] if mnli else ["validation"])
                if training_args.do_eval else []) + (
                (["test_matched", "test_mismatched"] if mnli else ["test"]) if training_args.do_predict else [])
            if not needed:
                fail("nothing to do: pass --do_train, --do_eval and/or --do_predict")
        try:
            datasets = load_glue(data_args.task_name, data_dir=data_args.data_dir, cache_dir=model_args.cache_dir,
                                 splits=needed)
        except GlueDataError as e:
            fail(e)
        if data_args.task_name == "mnli" and training_args.do_predict:
            ax = load_ax(data_args.data_dir, model_args.cache_dir)
            if ax is not None:
                datasets["test_ax"] = ax
        return datasets
    from datasets import DatasetDict, load_dataset  # here, not at the top: --help needs no datasets

    data_files = {"train": data_args.train_file, "validation": data_args.validation_file}
    if training_args.do_predict:
        if data_args.test_file is None:
            fail("--do_predict without --task_name needs --test_file")
        data_files["test"] = data_args.test_file
    for split, path in data_files.items():
        if not os.path.isfile(path):
            fail(f"{path} not found (the {split} file)")
    # One file at a time: a failure names its file, and a test file without labels gets no label column (loaded
    # together, datasets would give it one full of None).
    builder = "csv" if data_args.train_file.endswith(".csv") else "json"
    splits = {}
    for split, path in data_files.items():
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = sum(1 for line in f if line.strip())
        if lines <= (builder == "csv"):  # nothing, or a csv header alone
            fail(f"{path} has no examples (the {split} file)")
        try:
            splits[split] = load_dataset(builder, data_files={split: path}, cache_dir=model_args.cache_dir)[split]
        except Exception as e:  # noqa: BLE001 - pandas/pyarrow/datasets errors all mean "unreadable file"
            while e.__cause__ is not None:  # datasets wraps the reader's error in a generic one
                e = e.__cause__
            fail(f"{path} cannot be read as {builder} ({type(e).__name__}: {str(e).strip()[:200]})".splitlines()[0])
    train = splits["train"]
    if "label" not in train.column_names:
        fail(f"{data_args.train_file} has no 'label' column: name the column holding the labels 'label'")
    if train.features["label"].dtype not in ("float32", "float64"):  # classification: one label set for all files
        known = set(train.unique("label"))
        if None in known:
            fail(f"{data_args.train_file} has examples without a label")
        for split in ("validation", "test"):
            if split in splits and "label" in splits[split].column_names:
                unseen = set(splits[split].unique("label")) - known - ({None, -1} if split == "test" else set())
                if unseen:
                    fail(f"{data_files[split]} has label(s) {sorted(map(str, unseen))} that the train file "
                         f"{data_args.train_file} does not have ({sorted(map(str, known))}): use the same labels")
    return DatasetDict(splits)


def load_ax(data_dir, cache_dir):
    """The test split of GLUE's diagnostic set for an MNLI run, or None (with a warning) when there is none: the
    MNLI predictions are still wanted. A local AX file that cannot be read is an error."""
    folder = None
    if data_dir is not None:
        folder = glue_ax_dir(data_dir)
        if folder is None:
            logger.warning(f"no diagnostic/ or AX/ folder with AX.tsv beside the MNLI data of {data_dir}: "
                           "AX.tsv is not written")
            return None
    try:
        return load_glue("ax", data_dir=folder, cache_dir=cache_dir, splits=["test"] if folder else None)["test"]
    except GlueDataError as e:
        if folder is not None:
            fail(e)
        logger.warning(f"AX.tsv is not written: {e}")
        return None


def text_columns(task_name, columns):
    """The one or two columns a model reads: GLUE's fixed pair for a task; in csv/json files `sentence1` and
    `sentence2` when both are there, otherwise the first two columns that are not `label` (or the only one)."""
    if task_name is not None:
        return task_to_keys[task_name]
    if "sentence1" in columns and "sentence2" in columns:
        return "sentence1", "sentence2"
    texts = [c for c in columns if c != "label"]
    if not texts:
        fail("the data files have no text column besides 'label'")
    return texts[0], (texts[1] if len(texts) > 1 else None)


def labels_of(datasets, task_name):
    """The class names in label order: GLUE's, or a csv/json's distinct values sorted; None for regression (STS-B,
    float labels)."""
    if task_name is not None:
        return None if task_name == "stsb" else next(iter(datasets.values())).features["label"].names
    train = datasets["train"]
    return None if train.features["label"].dtype in ("float32", "float64") else sorted(train.unique("label"))


def label_mapping(config, label_list, task_name, num_labels):
    """dataset label -> model class id, or None when the dataset's own ids are the model's.

    csv/json labels (strings or numbers) are numbered in sorted order. GLUE datasets already hold class indices,
    which stay as they are unless the model was fine-tuned before with names of its own (label2id differs from
    the LABEL_0.. default): then each dataset position goes to the model's id of the same name."""
    if label_list is None:  # regression
        return None
    if task_name is None:
        return {label: i for i, label in enumerate(label_list)}
    if config.label2id == PretrainedConfig(num_labels=num_labels).label2id:
        return None
    model_ids = {name.lower(): int(i) for name, i in config.label2id.items()}
    if sorted(model_ids) != sorted(label_list):
        logger.warning(f"the model was trained with labels {sorted(model_ids)}, the data has {sorted(label_list)}: "
                       "the data's order is used and the model's label names are ignored")
        return None
    return {position: model_ids[name] for position, name in enumerate(label_list)}


def positions_of_model_ids(label_to_id, task_name, num_labels):
    """model class id -> position in label_list. The model predicts its own ids; metrics, result files and
    submissions speak in positions of label_list."""
    positions = np.arange(num_labels)
    if label_to_id is not None and task_name is not None:
        for position, model_id in label_to_id.items():
            positions[model_id] = position
    return positions


def tokenize_datasets(datasets, tokenizer, task_name, label_to_id, max_seq_length, pad_to_max_length,
                      overwrite_cache=False):
    """Every split tokenized: truncated to max_seq_length (at most the tokenizer's maximum), padded to it only with
    pad_to_max_length, labels turned into model class ids through label_to_id (None: kept as they are)."""
    if max_seq_length > tokenizer.model_max_length:
        logger.warning(f"max_seq_length {max_seq_length} is larger than the model's maximum "
                       f"({tokenizer.model_max_length}); using {tokenizer.model_max_length}.")
    max_seq_length = min(max_seq_length, tokenizer.model_max_length)
    from datasets import DatasetDict

    padding = "max_length" if pad_to_max_length else False
    first_text, second_text = text_columns(task_name, next(iter(datasets.values())).column_names)

    def preprocess_function(examples):
        texts = [examples[first_text]] + ([] if second_text is None else [examples[second_text]])
        result = tokenizer(*texts, padding=padding, max_length=max_seq_length, truncation=True)
        if label_to_id is not None and "original_label" in examples:
            result["label"] = [label_to_id[label] if label not in (-1, None) else -1  # -1/None: unlabelled test
                               for label in examples["original_label"]]
        return result

    def tokenize(split):
        drop = None
        if label_to_id is not None and "label" in split.column_names:
            # mapped labels go to a new column: datasets keeps the old type (e.g. a csv's strings) of a rewritten one
            split, drop = split.rename_column("label", "original_label"), ["original_label"]
        return split.map(preprocess_function, batched=True, load_from_cache_file=not overwrite_cache,
                         remove_columns=drop)

    return DatasetDict({name: tokenize(split) for name, split in datasets.items()})


def metrics_function(task_name, is_regression, model_to_position):
    """compute_metrics for the Trainer: GLUE's metrics for a task, else accuracy (or mse for regression). Class ids
    are turned back into positions in the dataset's label list first, so metrics match the gold labels."""
    def compute(prediction: EvalPrediction):
        out = prediction.predictions
        out = out[0] if isinstance(out, tuple) else out
        if is_regression:
            predicted, gold = np.squeeze(out), prediction.label_ids
        else:
            predicted, gold = model_to_position[np.argmax(out, axis=1)], model_to_position[prediction.label_ids]
        if task_name is not None:
            return glue_compute_metrics(task_name, predicted, gold)
        if is_regression:
            return {"mse": float(np.mean((predicted - gold) ** 2))}
        return {"accuracy": float((predicted == gold).astype(np.float32).mean())}
    return compute


def check_metric_for_best_model(name, compute_metrics, num_labels, task_name):
    """Fail before training when --metric_for_best_model names no metric of this run: the metric names come from
    compute_metrics itself, applied to perfect predictions of every class."""
    if num_labels == 1:
        probe = EvalPrediction(predictions=np.array([[0.0], [1.0], [2.0]]), label_ids=np.array([0.0, 1.0, 2.0]))
    else:
        probe = EvalPrediction(predictions=np.eye(num_labels), label_ids=np.arange(num_labels))
    known = {f"eval_{k}" for k in compute_metrics(probe)} | {"eval_loss"}
    if (name if name.startswith("eval_") else f"eval_{name}") not in known:
        fail(f"--metric_for_best_model {name} is not among the metrics of {task_name or 'this run'} "
             f"({', '.join(sorted(known))}): pick one of them")


def check_writable(folder):
    """Fail now, not after training, when --output_dir cannot be created or written (nothing is created here)."""
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        why = "is not writable" if os.path.isdir(existing) else "is a file"
        fail(f"cannot write to --output_dir {folder} ({existing} {why}): pick a writable folder")


def main(args=None):
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args)

    import torch
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        default_data_collator,
        set_seed,
    )
    from transformers.lora import count_parameters, fork_trainable_rule
    from transformers.method_loading import load_adapter_state_dict, load_lora_state_dict
    from transformers.safe_loading import UnreadableCheckpoint

    if training_args.use_deterministic_algorithms:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what CUDA needs for deterministic matmuls
    if training_args.use_deterministic_algorithms or torch.are_deterministic_algorithms_enabled():
        # only when it changes something: the call imports torch's compiler stack (~2 s)
        torch.use_deterministic_algorithms(training_args.use_deterministic_algorithms)

    last_checkpoint = None
    if os.path.isdir(training_args.output_dir) and training_args.do_train and not training_args.overwrite_output_dir:
        last_checkpoint = get_last_checkpoint(training_args.output_dir)
        if last_checkpoint is None and any(re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-\d+", name)
                                           for name in os.listdir(training_args.output_dir)):
            fail(f"every checkpoint-N in {training_args.output_dir} is incomplete or damaged (see above): pass "
                 "--overwrite_output_dir to start over")
        if last_checkpoint is None and os.listdir(training_args.output_dir):
            fail(f"output directory {training_args.output_dir} exists and is not empty: pass --overwrite_output_dir "
                 "or pick another --output_dir")
    if model_args.lora_path is not None and not model_args.apply_lora:
        fail("--lora_path needs --apply_lora with the --lora_r/--lora_alpha it was trained with")
    if model_args.adapter_path is not None and not model_args.apply_adapter:
        fail("--adapter_path needs --apply_adapter with the --adapter_type/--adapter_size it was trained with")
    strategy = training_args.evaluation_strategy.value
    if training_args.do_train and strategy != "no" and not training_args.do_eval:  # else it fails after training
        fail(f"--evaluation_strategy {strategy} needs --do_eval (the validation split it evaluates on)")
    check_writable(training_args.output_dir)

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        handlers=[logging.StreamHandler(sys.stdout)])
    main_process = training_args.process_index == 0  # under torchrun this joins the process group
    logger.setLevel(logging.INFO if main_process else logging.WARNING)
    if main_process:
        transformers.utils.logging.set_verbosity_info()
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    logger.info(f"running on {training_args.device} ({training_args.n_gpu} GPU(s) in this process); fp16 "
                f"{'on' if training_args.fp16 else 'off'}; deterministic algorithms "
                f"{'on' if torch.are_deterministic_algorithms_enabled() else 'off'}")
    logger.debug(f"arguments: {training_args}")
    if last_checkpoint is not None:
        logger.info(f"resuming from {last_checkpoint}, the newest checkpoint in --output_dir "
                    "(--overwrite_output_dir starts over instead)")

    # Set seed before initializing the model: LoRA A matrices and the head are drawn from it.
    set_seed(training_args.seed)

    with training_args.main_process_first():  # one process fills the datasets cache, the others read it
        datasets = load_datasets(data_args, model_args, training_args)
    label_list = labels_of(datasets, data_args.task_name)
    is_regression = label_list is None
    num_labels = 1 if is_regression else len(label_list)

    # The fork's method flags travel on the config, where the model classes read them.
    method_flags = {name: getattr(model_args, name) for name in ("apply_lora", "lora_r", "lora_alpha", "apply_adapter",
                                                                 "adapter_type", "adapter_size", "reg_loss_wgt",
                                                                 "masking_prob")}
    hub = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision,
           "use_auth_token": True if model_args.use_auth_token else None}
    source = model_args.model_name_or_path
    try:
        config = AutoConfig.from_pretrained(model_args.config_name or source, num_labels=num_labels,
                                            finetuning_task=data_args.task_name, cls_dropout=training_args.cls_dropout,
                                            **method_flags, **hub)
        tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or source,
                                                  use_fast=model_args.use_fast_tokenizer, **hub)
        # the report of tensors left at their initial values waits for --lora_path / --adapter_path, whose files
        # may fill some of them (the head above all)
        model, loading = AutoModelForSequenceClassification.from_pretrained(
            source, config=config, ignore_mismatched_sizes=model_args.ignore_mismatched_sizes,
            output_loading_info=True, defer_loading_report=True, **hub)
    except (OSError, ValueError, RuntimeError) as e:  # RuntimeError: checkpoint tensors of another shape
        fail(str(e).strip().splitlines()[0].replace("ignore_mismatched_sizes=True", "--ignore_mismatched_sizes"))

    if hasattr(model, "pack_tokens"):
        model.pack_tokens = model_args.pack_tokens
    if model_args.lora_path is not None:
        try:
            applied = load_lora_state_dict(model, model_args.lora_path)
        except ValueError as e:
            fail(e)
        loading["loading_report"].supplied_by(model_args.lora_path, applied["loaded"])
        logger.info(f"Applied the LoRA state dict of {model_args.lora_path}")
    names = [name for name, _ in model.named_parameters()]
    for flag, on, part in (("--apply_lora", model_args.apply_lora, "lora_"),
                           ("--apply_adapter", model_args.apply_adapter, "adapter")):
        if on and not any(part in name for name in names):  # else the fork's rule would silently train the head only
            fail(f"{flag}: {type(model).__name__} has no {part.strip('_')} layers ({config.model_type} does not "
                 "implement them)")
    if model_args.adapter_path is not None:
        try:
            applied = load_adapter_state_dict(model, model_args.adapter_path)
        except ValueError as e:
            fail(e)
        loading["loading_report"].supplied_by(model_args.adapter_path, applied["loaded"])
        logger.info(f"Applied the adapter state dict of {model_args.adapter_path}")
    loading["loading_report"].emit()

    fork_trainable_rule(model, apply_lora=model_args.apply_lora, apply_adapter=model_args.apply_adapter,
                        apply_bitfit=model_args.apply_bitfit)
    counts = count_parameters(model)
    if main_process:
        print(f"trainable parameters: {counts['trainable']:,} of {counts['total']:,} "
              f"({100 * counts['trainable'] / counts['total']:.2f}%): lora {counts['lora']:,}, "
              + (f"adapter {counts['adapter']:,}, " if counts["adapter"] else "") + f"head {counts['head']:,}")

    label_to_id = label_mapping(model.config, label_list, data_args.task_name, num_labels)
    model_to_position = positions_of_model_ids(label_to_id, data_args.task_name, num_labels)
    # Only the rows the run uses (those `take` keeps below) are tokenized: a --max_train_samples 2000 run on SST-2
    # tokenizes 2,000 training rows, not 67,349.
    limits = {"train": data_args.max_train_samples, "validation": data_args.max_val_samples,
              "test": data_args.max_test_samples}
    limit_of = {name: limits.get(name.split("_")[0]) for name in datasets}
    datasets = {name: split if limit_of[name] is None else split.select(range(min(limit_of[name], len(split))))
                for name, split in datasets.items()}
    with training_args.main_process_first():
        datasets = tokenize_datasets(datasets, tokenizer, data_args.task_name, label_to_id, data_args.max_seq_length,
                                     data_args.pad_to_max_length, data_args.overwrite_cache)

    def take(split, limit, flag):
        if split not in datasets:
            fail(f"{flag} needs a {split} split")
        return datasets[split] if limit is None else datasets[split].select(range(min(limit, len(datasets[split]))))

    mnli = data_args.task_name == "mnli"
    if training_args.do_train:
        train_dataset = take("train", data_args.max_train_samples, "--do_train")
        for index in random.sample(range(len(train_dataset)), min(3, len(train_dataset))):
            logger.debug(f"training example {index}: {train_dataset[index]}")
    # MNLI is scored on matched and mismatched data: both are kept, under separate names
    evals = [(data_args.task_name, "validation_matched" if mnli else "validation", "eval")]
    tests = [(data_args.task_name, "test_matched" if mnli else "test")]
    if mnli:
        evals.append(("mnli-mm", "validation_mismatched", "eval_mnli-mm"))
        tests.append(("mnli-mm", "test_mismatched"))
        if "test_ax" in datasets:
            tests.append(("ax", "test_ax"))
    eval_sets = [(t, take(s, data_args.max_val_samples, "--do_eval"), p) for t, s, p in evals] \
        if training_args.do_eval else []
    test_sets = [(t, take(s, data_args.max_test_samples, "--do_predict")) for t, s in tests] \
        if training_args.do_predict else []

    # Batches are padded to their longest example (to a multiple of 8 under fp16, which tensor cores like), unless
    # every example was already padded to max_seq_length.
    data_collator = default_data_collator if data_args.pad_to_max_length else DataCollatorWithPadding(
        tokenizer, pad_to_multiple_of=8 if training_args.fp16 else None)
    compute_metrics = metrics_function(data_args.task_name, is_regression, model_to_position)
    if training_args.do_train and training_args.metric_for_best_model is not None:
        check_metric_for_best_model(training_args.metric_for_best_model, compute_metrics, num_labels,
                                    data_args.task_name)
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset if training_args.do_train else None,
        eval_dataset=eval_sets[0][1] if eval_sets else None,
        compute_metrics=compute_metrics,
        tokenizer=tokenizer,
        data_collator=data_collator,
    )

    all_results = {}
    if training_args.do_train:
        # Only a checkpoint-N folder of this output_dir is resumed. (4.4.2 also "resumed" from a local
        # model_name_or_path, which reloaded the model from it and dropped the LoRA layers.)
        try:
            train_result = trainer.train(resume_from_checkpoint=last_checkpoint)
        # a damaged or unsafe checkpoint file; a nan/inf loss; a checkpoint that could not be written (disk full)
        except (UnreadableCheckpoint, NonFiniteLoss, CheckpointSaveError) as e:
            fail(e)
        metrics = train_result.metrics
        metrics["train_samples"] = len(train_dataset)
        trainer.save_model()  # also the tokenizer and, with LoRA, pytorch_model_lora.bin
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        all_results.update(metrics)

    for task, eval_dataset, prefix in eval_sets:
        logger.info(f"evaluating {task or 'the validation file'}")
        metrics = trainer.evaluate(eval_dataset=eval_dataset, metric_key_prefix=prefix)
        metrics[f"{prefix}_samples"] = len(eval_dataset)
        trainer.log_metrics(prefix, metrics)
        trainer.save_metrics(prefix, metrics)
        all_results.update(metrics)

    for task, test_dataset in test_sets:
        logger.info(f"predicting {task or 'the test file'}")
        idx = test_dataset["idx"] if "idx" in test_dataset.column_names else None
        if "label" in test_dataset.column_names:  # -1 everywhere: not something to score
            test_dataset = test_dataset.remove_columns("label")
        predictions = trainer.predict(test_dataset=test_dataset).predictions
        if is_regression:
            predictions = np.atleast_1d(np.squeeze(predictions))
        else:
            predictions = model_to_position[np.argmax(predictions, axis=1)]
        if trainer.is_world_process_zero():
            lines = ["index\tprediction"]
            for index, item in enumerate(predictions):
                lines.append(f"{index}\t{item:3.3f}" if is_regression else f"{index}\t{label_list[item]}")
            write_atomic(os.path.join(training_args.output_dir, f"test_results_{task}.txt"), "\n".join(lines) + "\n")
            if data_args.task_name is not None:
                name, text = glue_submission(task, predictions, idx)
                write_atomic(os.path.join(training_args.output_dir, name), text)
            logger.info(f"{task or 'test'} predictions written to {training_args.output_dir}")
    return all_results  # also merged into all_results.json by save_metrics


if __name__ == "__main__":
    main()
    from transformers.training_args import end_distributed_process

    end_distributed_process()  # under torchrun: every rank exits 0 once all is written, see its docstring
