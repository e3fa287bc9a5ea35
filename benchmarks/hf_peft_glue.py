"""The HF + PEFT side of benchmarks/real_glue.py: LoRA fine-tuning of a BERT checkpoint on one GLUE task with
stock Hugging Face transformers (Trainer) and peft, the recipe real_glue.py also gives our run_glue.py.

Runs in its own environment (latest transformers + peft), never with our package:
    /tmp/hf/bin/python benchmarks/hf_peft_glue.py --model_dir DIR --glue_dir ../shared/data/glue --task sst2 \
        --max_train_samples 4000 --seed 1 --out_json result.json

Reads the GLUE tsv files directly (tab-separated, quoting off; CoLA train/dev have no header) and keeps the first
`max_train_samples` training rows in file order, as run_glue.py's --max_train_samples does. Writes a JSON with the
dev metrics and the training / evaluation wall times.

--head picks what trains besides LoRA: `classifier` (modules_to_save=["classifier"]), `default` (task_type SEQ_CLS
and no modules_to_save: PEFT's own choice for a sequence classifier, its `classifier`/`score` module) or `pooler`
(SEQ_CLS with modules_to_save=["classifier", "pooler"]: BERT's bert.pooler trains too, PEFT matching the name's
end). --eval_each_epoch evaluates on the dev set after every epoch and leaves trainer_state.json (log_history with
eval_<metric> per epoch) and all_results.json in --output_dir, the files scripts/summarize.py reads from a run of
run_glue.py. Metrics are computed with numpy here (Pearson, Spearman with average ranks for ties, binary Matthews
correlation, 0 when undefined), so this venv needs neither scipy nor scikit-learn.
"""
import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

TASKS = {  # task -> (folder, text columns, CoLA-style headerless train/dev, number of labels)
    "cola": ("CoLA", ("sentence",), True, 2),
    "sst2": ("SST-2", ("sentence",), False, 2),
    "rte": ("RTE", ("sentence1", "sentence2"), False, 2),
    "stsb": ("STS-B", ("sentence1", "sentence2"), False, 1),
}
RTE_LABELS = ["entailment", "not_entailment"]  # GLUE's label order


def read_split(glue_dir, task, split):
    folder, columns, headerless, _ = TASKS[task]
    lines = [line for line in (Path(glue_dir) / folder / f"{split}.tsv").read_text(encoding="utf-8").split("\n")
             if line]
    if headerless:  # CoLA: source, label, original label, sentence
        rows = [line.split("\t") for line in lines]
        return {"sentence": [r[3] for r in rows], "label": [int(r[1]) for r in rows]}
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:]]
    data = {c: [r[header.index(c)] for r in rows] for c in columns}
    label_col = "score" if task == "stsb" else "label"
    raw = [r[header.index(label_col)] for r in rows]
    data["label"] = ([float(x) for x in raw] if task == "stsb" else
                     [RTE_LABELS.index(x) for x in raw] if task == "rte" else [int(x) for x in raw])
    return data


def _pearson(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    a, b = a - a.mean(), b - b.mean()
    scale = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / scale) if scale > 0 else float("nan")


def _ranks(x):
    """1-based ranks, tied values sharing the mean of their positions."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse]


def _matthews(labels, preds):
    labels, preds = np.asarray(labels) == 1, np.asarray(preds) == 1
    tp, tn = float(np.sum(labels & preds)), float(np.sum(~labels & ~preds))
    fp, fn = float(np.sum(~labels & preds)), float(np.sum(labels & ~preds))
    scale = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / scale if scale > 0 else 0.0


def metrics(task, preds, labels):
    if task == "stsb":
        return {"pearson": _pearson(preds, labels), "spearmanr": _pearson(_ranks(preds), _ranks(labels))}
    preds = preds.argmax(-1)
    if task == "cola":
        return {"matthews_correlation": float(_matthews(labels, preds))}
    return {"accuracy": float((preds == labels).mean())}


def head_config(head):
    """The LoraConfig arguments for --head (see the module docstring)."""
    if head == "classifier":
        return {"modules_to_save": ["classifier"]}
    if head == "default":
        return {"task_type": "SEQ_CLS"}
    return {"task_type": "SEQ_CLS", "modules_to_save": ["classifier", "pooler"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_dir", required=True)
    p.add_argument("--glue_dir", required=True)
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--max_train_samples", type=int, default=None)
    p.add_argument("--max_eval_samples", type=int, default=None, help="first N dev rows (default: all)")
    p.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU the Trainer finds")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--learning_rate", type=float, default=5e-4)
    p.add_argument("--num_train_epochs", type=float, default=1.0)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--eval_batch_size", type=int, default=128)
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--lora_r", type=int, default=8)
    p.add_argument("--lora_alpha", type=int, default=16)
    p.add_argument("--weight_decay", type=float, default=0.0)
    p.add_argument("--warmup_ratio", type=float, default=0.0)
    p.add_argument("--head", choices=["classifier", "default", "pooler"], default="classifier",
                   help="what trains besides LoRA (see the module docstring)")
    p.add_argument("--eval_each_epoch", action="store_true", help="dev evaluation after every epoch")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--out_json", required=True)
    args = p.parse_args()

    t_start = time.time()
    import peft
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments, set_seed)

    set_seed(args.seed)
    num_labels = TASKS[args.task][3]
    columns = TASKS[args.task][1]
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)

    def encode(split, limit):
        data = read_split(args.glue_dir, args.task, split)
        if limit is not None:
            data = {k: v[:limit] for k, v in data.items()}
        enc = tokenizer(*[data[c] for c in columns], truncation=True, max_length=args.max_seq_length)
        # a plain list of examples is a dataset to the Trainer: no `datasets` needed in this venv
        return [{**{k: v[i] for k, v in enc.items()}, "labels": label} for i, label in enumerate(data["label"])]

    train, dev = encode("train", args.max_train_samples), encode("dev", args.max_eval_samples)
    model = AutoModelForSequenceClassification.from_pretrained(args.model_dir, num_labels=num_labels)
    lora = peft.LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=0.0,
                           target_modules=["query", "value"], **head_config(args.head))
    model = peft.get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    trained_modules = sorted({n.split(".modules_to_save.")[0].replace("base_model.model.", "")
                              for n, p in model.named_parameters() if p.requires_grad and ".modules_to_save." in n})

    def compute_metrics(prediction):
        out = prediction.predictions
        return metrics(args.task, out.squeeze(-1) if num_labels == 1 else out, np.asarray(prediction.label_ids))

    targs = TrainingArguments(
        output_dir=args.output_dir, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size, learning_rate=args.learning_rate,
        num_train_epochs=args.num_train_epochs, weight_decay=args.weight_decay,
        warmup_steps=args.warmup_ratio,  # transformers 5: a float below 1 is a ratio of the total steps (ceil)
        lr_scheduler_type="linear", seed=args.seed, save_strategy="no",
        eval_strategy="epoch" if args.eval_each_epoch else "no", logging_strategy="no",
        report_to=[], disable_tqdm=True, use_cpu=args.device == "cpu", dataloader_num_workers=0, remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=targs, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer),
                      eval_dataset=dev if args.eval_each_epoch else None,
                      compute_metrics=compute_metrics if args.eval_each_epoch else None)
    t0 = time.time()
    train_out = trainer.train()
    t1 = time.time()
    pred = trainer.predict(dev)
    t2 = time.time()
    labels = np.asarray([row["labels"] for row in dev])
    preds = pred.predictions.squeeze(-1) if num_labels == 1 else pred.predictions
    result = {"side": "hf+peft", "task": args.task, "seed": args.seed, "train_samples": len(train),
              "dev_samples": len(dev), "trainable_params": trainable, "modules_to_save": trained_modules,
              "head": args.head, "train_loss": train_out.training_loss,
              "train_seconds": t1 - t0, "eval_seconds": t2 - t1, "total_seconds": time.time() - t_start,
              "torch": torch.__version__, "threads": torch.get_num_threads(), **metrics(args.task, preds, labels)}
    if args.eval_each_epoch:  # what summarize.py reads from a run_glue.py folder
        os.makedirs(args.output_dir, exist_ok=True)
        trainer.state.save_to_json(os.path.join(args.output_dir, "trainer_state.json"))
        final = {f"eval_{k}": v for k, v in metrics(args.task, preds, labels).items()}
        with open(os.path.join(args.output_dir, "all_results.json"), "w") as f:
            json.dump({**final, "eval_samples": len(dev), "train_runtime": t1 - t0, "eval_runtime": t2 - t1,
                       "train_loss": train_out.training_loss, "epoch": args.num_train_epochs}, f, indent=2)
    tmp = args.out_json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, args.out_json)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
