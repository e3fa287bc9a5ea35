"""Made-up GLUE folders written in each task's real file layout (the columns of the GLUE distribution), plus the
records a loader must return for them (Hub column names, label ids, idx)."""

import os
import random

# the columns of the original GLUE files (facts of the GLUE distribution)
HEADERS = {
    "cola": {"train": None, "dev": None, "test": ["index", "sentence"]},  # train/dev: source, label, star, sentence
    "sst2": {"train": ["sentence", "label"], "dev": ["sentence", "label"], "test": ["index", "sentence"]},
    "mrpc": {s: ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"] for s in ("train", "dev")}
    | {"test": ["index", "#1 ID", "#2 ID", "#1 String", "#2 String"]},
    "qqp": {s: ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"] for s in ("train", "dev")}
    | {"test": ["id", "question1", "question2"]},
    "stsb": {s: ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2",
                 "score"] for s in ("train", "dev")}
    | {"test": ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2"]},
    "mnli": {
        "train": ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                  "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"],
        "dev": ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "label2", "label3",
                "label4", "label5", "gold_label"],
        "test": ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                 "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"],
    },
    "qnli": {s: ["index", "question", "sentence", "label"] for s in ("train", "dev")}
    | {"test": ["index", "question", "sentence"]},
    "rte": {s: ["index", "sentence1", "sentence2", "label"] for s in ("train", "dev")}
    | {"test": ["index", "sentence1", "sentence2"]},
    "wnli": {s: ["index", "sentence1", "sentence2", "label"] for s in ("train", "dev")}
    | {"test": ["index", "sentence1", "sentence2"]},
    "ax": {"test": ["index", "sentence1", "sentence2"]},
}
DIR_NAMES = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qqp": "QQP", "stsb": "STS-B", "mnli": "MNLI",
             "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI", "ax": "diagnostic"}
# what the Hub's glue dataset calls the columns and the classes (reference facts, independent of glue.py)
HUB_COLUMNS = {"cola": ["sentence"], "sst2": ["sentence"], "mrpc": ["sentence1", "sentence2"],
               "qqp": ["question1", "question2"], "stsb": ["sentence1", "sentence2"], "mnli": ["premise", "hypothesis"],
               "qnli": ["question", "sentence"], "rte": ["sentence1", "sentence2"], "wnli": ["sentence1", "sentence2"],
               "ax": ["premise", "hypothesis"]}
HUB_LABELS = {"cola": ["unacceptable", "acceptable"], "sst2": ["negative", "positive"],
              "mrpc": ["not_equivalent", "equivalent"], "qqp": ["not_duplicate", "duplicate"], "stsb": None,
              "mnli": ["entailment", "neutral", "contradiction"], "qnli": ["entailment", "not_entailment"],
              "rte": ["entailment", "not_entailment"], "wnli": ["not_entailment", "entailment"],
              "ax": ["entailment", "neutral", "contradiction"]}
# labels written as class names in the files (the others write 0/1 or a float score)
NAMED_LABELS = {"mnli", "qnli", "rte"}
# text file columns, in Hub column order
TEXT_COLUMNS = {"cola": ["sentence"], "sst2": ["sentence"], "mrpc": ["#1 String", "#2 String"],
                "qqp": ["question1", "question2"], "stsb": ["sentence1", "sentence2"],
                "mnli": ["sentence1", "sentence2"],
                "qnli": ["question", "sentence"], "rte": ["sentence1", "sentence2"], "wnli": ["sentence1", "sentence2"],
                "ax": ["sentence1", "sentence2"]}
LABEL_COLUMN = {"cola": 1, "sst2": "label", "mrpc": "Quality", "qqp": "is_duplicate", "stsb": "score",
                "mnli": "gold_label", "qnli": "label", "rte": "label", "wnli": "label"}

FILLER = "the a movie story film plot actor scene music people time day".split()
# one marker word per class: the label is learnable from the first text
MARKERS = ["awful", "lovely", "maybe"]
# awkward but legal content: unbalanced quotes (files are read with quoting off), non-ASCII, trailing space
ODD = ['he said "yes', "café naïve", "it 's fine . "]


def split_files(task):
    if task == "mnli":
        return {"train": "train.tsv", "validation_matched": "dev_matched.tsv",
                "validation_mismatched": "dev_mismatched.tsv", "test_matched": "test_matched.tsv",
                "test_mismatched": "test_mismatched.tsv"}
    if task == "ax":
        return {"test": "AX.tsv"}
    return {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}


def _sentence(rng, marker, i):
    words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
    words.insert(rng.randint(0, len(words)), marker)
    return " ".join(words) + (" " + ODD[i % len(ODD)] if i % 5 == 0 else "")


def write_glue_task(task, root, n=24, seed=0, bom=False, sizes=None):
    """Write made-up files for `task` under root/<GLUE dir name>; return (folder, {split: expected records}).
    Each split has n rows, or sizes[split] (e.g. {"validation_mismatched": 12}) where given."""
    rng = random.Random(seed)
    folder = os.path.join(root, DIR_NAMES[task])
    os.makedirs(folder, exist_ok=True)
    n_classes = len(HUB_LABELS[task]) if HUB_LABELS[task] else 3
    expected = {}
    for split, filename in split_files(task).items():
        kind = split.split("_")[0].replace("validation", "dev")
        header = HEADERS[task][kind]
        lines, records = [], []
        if header is not None:
            lines.append("\t".join(header))
        for i in range((sizes or {}).get(split, n)):
            k = rng.randrange(n_classes)
            texts = [_sentence(rng, MARKERS[k], i)] + [_sentence(rng, rng.choice(FILLER), i + 1)]
            texts = texts[: len(HUB_COLUMNS[task])]
            if header is None:  # CoLA train/dev
                fields = ["gj04", str(k), "" if k else "*", texts[0]]
            else:
                row = {c: f"{c}-{i}" for c in header}
                row.update(zip(TEXT_COLUMNS[task], texts))
                if task in LABEL_COLUMN and LABEL_COLUMN[task] in header:
                    row[LABEL_COLUMN[task]] = (HUB_LABELS[task][k] if task in NAMED_LABELS
                                               else f"{k * 2.5:.3f}" if task == "stsb" else str(k))
                fields = [row[c] for c in header]
            labeled = kind != "test"
            record = dict(zip(HUB_COLUMNS[task], texts))
            record["label"] = (float(k * 2.5) if task == "stsb" else k) if labeled else (-1.0 if task == "stsb" else -1)
            record["idx"] = i
            lines.append("\t".join(fields))
            records.append(record)
        text = "\n".join(lines) + "\n"
        if bom and kind == "train":
            text = "\ufeff" + text
        with open(os.path.join(folder, filename), "w", encoding="utf-8", newline="") as f:
            f.write(text)
        expected[split] = records
    return folder, expected
