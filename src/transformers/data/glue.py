"""GLUE for run_glue.py: load a task from the Hub or from a local copy of the original GLUE distribution, and
score predictions with the GLUE metrics.

Both sources give the same `datasets.DatasetDict`: the Hub's column names (`sentence`, `sentence1`/`sentence2`,
`question`/`sentence`, `question1`/`question2`, `premise`/`hypothesis`), a `label` column (a `ClassLabel` with the
Hub's class names, or float32 for STS-B; -1 where a test file has no labels) and an `idx` column (the row number
inside its file). Splits are train/validation/test; MNLI has validation_matched, validation_mismatched,
test_matched and test_mismatched, AX only test.

Local files are read the way GLUE wrote them: tab-separated, no quoting (a `"` is an ordinary character),
UTF-8 with an optional BOM, one header line except CoLA's train/dev files.
"""

import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

HUB_GLUE = "nyu-mll/glue"


class GlueDataError(ValueError):
    """A GLUE file or directory that cannot be read; the message names the file (and line) and the problem."""


@dataclass(frozen=True)
class GlueTask:
    dir_name: str  # folder of the task in the GLUE distribution
    text: Tuple[Tuple[str, str], ...]  # (dataset column, file column) for the one or two texts
    label_column: Optional[str]  # file column holding the label; None: no labels (AX)
    label_names: Optional[Tuple[str, ...]]  # ClassLabel names, None for regression (STS-B)
    files: Tuple[Tuple[str, Tuple[str, ...]], ...]  # (split, candidate file names)
    no_header: Tuple[str, ...] = ()  # header used for files that have none (CoLA train/dev)

    @property
    def keys(self):
        names = [column for column, _ in self.text]
        return names[0], (names[1] if len(names) > 1 else None)


_STANDARD_FILES = (("train", ("train.tsv",)), ("validation", ("dev.tsv",)), ("test", ("test.tsv",)))
_NLI3 = ("entailment", "neutral", "contradiction")

GLUE_TASKS: Dict[str, GlueTask] = {
    "cola": GlueTask("CoLA", (("sentence", "sentence"),), "label", ("unacceptable", "acceptable"),
                     _STANDARD_FILES, no_header=("source", "label", "orig_label", "sentence")),
    "sst2": GlueTask("SST-2", (("sentence", "sentence"),), "label", ("negative", "positive"), _STANDARD_FILES),
    "mrpc": GlueTask("MRPC", (("sentence1", "#1 String"), ("sentence2", "#2 String")), "Quality",
                     ("not_equivalent", "equivalent"), _STANDARD_FILES),
    "qqp": GlueTask("QQP", (("question1", "question1"), ("question2", "question2")), "is_duplicate",
                    ("not_duplicate", "duplicate"), _STANDARD_FILES),
    "stsb": GlueTask("STS-B", (("sentence1", "sentence1"), ("sentence2", "sentence2")), "score", None,
                     _STANDARD_FILES),
    "mnli": GlueTask("MNLI", (("premise", "sentence1"), ("hypothesis", "sentence2")), "gold_label", _NLI3,
                     (("train", ("train.tsv",)),
                      ("validation_matched", ("dev_matched.tsv",)),
                      ("validation_mismatched", ("dev_mismatched.tsv",)),
                      ("test_matched", ("test_matched.tsv",)),
                      ("test_mismatched", ("test_mismatched.tsv",)))),
    "qnli": GlueTask("QNLI", (("question", "question"), ("sentence", "sentence")), "label",
                     ("entailment", "not_entailment"), _STANDARD_FILES),
    "rte": GlueTask("RTE", (("sentence1", "sentence1"), ("sentence2", "sentence2")), "label",
                    ("entailment", "not_entailment"), _STANDARD_FILES),
    "wnli": GlueTask("WNLI", (("sentence1", "sentence1"), ("sentence2", "sentence2")), "label",
                     ("not_entailment", "entailment"), _STANDARD_FILES),
    # the diagnostic set: test only, predicted with an MNLI model
    "ax": GlueTask("diagnostic", (("premise", "sentence1"), ("hypothesis", "sentence2")), None, _NLI3,
                   (("test", ("AX.tsv", "diagnostic.tsv")),)),
}
GLUE_TASK_TO_KEYS = {name: task.keys for name, task in GLUE_TASKS.items()}


def _normalize(name):
    return name.lower().replace("-", "").replace("_", "")


def glue_task(task_name):
    """The GlueTask for a name as users write it ("SST-2", "sst2", "STS-B", ...)."""
    key = _normalize(task_name)
    if key not in GLUE_TASKS:
        raise GlueDataError(f"unknown GLUE task {task_name!r}; pick one of {', '.join(GLUE_TASKS)}")
    return key, GLUE_TASKS[key]


def glue_features(task_name):
    import datasets

    _, task = glue_task(task_name)
    features = {column: datasets.Value("string") for column, _ in task.text}
    if task.label_names is None:
        features["label"] = datasets.Value("float32")
    else:
        features["label"] = datasets.ClassLabel(names=list(task.label_names))
    features["idx"] = datasets.Value("int32")
    return datasets.Features(features)


def _parse_label(raw, task, where):
    if task.label_names is None:
        try:
            return float(raw)
        except ValueError:
            raise GlueDataError(f"{where}: label {raw!r} is not a number") from None
    if raw in task.label_names:
        return task.label_names.index(raw)
    if raw.strip().isdigit() and int(raw) < len(task.label_names):  # CoLA, SST-2, MRPC, QQP, WNLI store 0/1
        return int(raw)
    raise GlueDataError(f"{where}: label {raw!r} is not one of {list(task.label_names)} "
                        f"or 0..{len(task.label_names) - 1}")


def read_glue_tsv(task_name, path, split):
    """Read one GLUE tsv file into dataset columns (see module docstring)."""
    _, task = glue_task(task_name)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise GlueDataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    # split on "\n" only: str.splitlines would also break on \x1c, \x85, \u2028 ..., which can occur inside texts
    lines = text.split("\n")
    first = 0
    if task.no_header and not split.startswith("test"):
        header = list(task.no_header)
    else:
        header = lines[0].rstrip("\r").split("\t")
        first = 1
    labeled = task.label_column is not None and task.label_column in header
    if not labeled and not split.startswith("test"):
        raise GlueDataError(f"{path}: no {task.label_column!r} column in header {header}; is this the {split} file of "
                            f"{task.dir_name}?")
    wanted = [file_column for _, file_column in task.text]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise GlueDataError(f"{path}: header {header} lacks column(s) {missing} of {task.dir_name}")
    positions = [header.index(c) for c in wanted]
    label_position = header.index(task.label_column) if labeled else None

    columns = {column: [] for column, _ in task.text}
    labels, idx = [], []
    for number in range(first, len(lines)):
        line = lines[number].rstrip("\r")
        if not line:  # the newline that ends the file, or a blank line
            continue
        fields = line.split("\t")
        where = f"{path}:{number + 1}"
        if len(fields) != len(header):
            raise GlueDataError(f"{where}: expected {len(header)} tab-separated fields ({', '.join(header)}), "
                                f"got {len(fields)}")
        for (column, _), position in zip(task.text, positions):
            columns[column].append(fields[position])
        if labeled:
            labels.append(_parse_label(fields[label_position], task, where))
        else:
            labels.append(-1.0 if task.label_names is None else -1)
        idx.append(len(idx))
    if not idx:
        raise GlueDataError(f"{path}: no examples")
    columns["label"] = labels
    columns["idx"] = idx
    return columns


def _task_dir(task, data_dir):
    """`data_dir` itself, or its subfolder named like the GLUE distribution (e.g. glue_data/SST-2)."""
    candidates = {name for _, names in task.files for name in names}
    if any(os.path.isfile(os.path.join(data_dir, name)) for name in candidates):
        return data_dir
    sub = os.path.join(data_dir, task.dir_name)
    return sub if os.path.isdir(sub) else data_dir


# The folders the diagnostic set comes in next to MNLI: download_glue_data.py's, and one named like its file
AX_DIR_NAMES = ("diagnostic", "AX")


def glue_ax_dir(data_dir):
    """The folder of the AX diagnostic set that goes with the MNLI data of `data_dir` (a GLUE root or its MNLI
    folder): the diagnostic/ or AX/ folder beside MNLI, or None when neither holds an AX file."""
    parent = os.path.dirname(os.path.abspath(_task_dir(GLUE_TASKS["mnli"], data_dir)))
    names = [name for _, names in GLUE_TASKS["ax"].files for name in names]
    for folder in (os.path.join(parent, d) for d in AX_DIR_NAMES):
        if any(os.path.isfile(os.path.join(folder, name)) for name in names):
            return folder
    return None


def load_glue_from_dir(task_name, data_dir, splits=None):
    """A DatasetDict of the splits whose files are in `data_dir` (or only `splits`, which must all exist)."""
    import datasets

    name, task = glue_task(task_name)
    if not os.path.isdir(data_dir):
        raise GlueDataError(f"--data_dir {data_dir} is not a directory")
    folder = _task_dir(task, data_dir)
    # RTE and WNLI (and others) share a layout: refuse another task's folder rather than mislabel it silently
    base = _normalize(os.path.basename(os.path.normpath(folder)))
    other = [n for n, t in GLUE_TASKS.items() if n != name and base in (n, _normalize(t.dir_name))]
    if other and base not in (name, _normalize(task.dir_name)):
        raise GlueDataError(f"{folder} looks like the {GLUE_TASKS[other[0]].dir_name} folder, not {task.dir_name}; "
                            f"check --task_name and --data_dir")
    features = glue_features(name)
    result = {}
    for split, names in task.files:
        if splits is not None and split not in splits:
            continue
        path = next((os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))), None)
        if path is None:
            if splits is not None:
                missing = os.path.join(folder, names[0])
                raise GlueDataError(f"{missing} not found: the {split} split of {name} is needed")
            continue
        result[split] = datasets.Dataset.from_dict(read_glue_tsv(name, path, split), features=features)
    if not result:
        expected = ", ".join(n[0] for _, n in task.files)
        raise GlueDataError(f"{folder}: no {task.dir_name} files (expected {expected})")
    return datasets.DatasetDict(result)


def load_glue(task_name, data_dir=None, cache_dir=None, splits=None):
    """GLUE `task_name` from a local GLUE folder when `data_dir` is given (only `splits` if given), else from the
    Hub (nyu-mll/glue)."""
    name, _ = glue_task(task_name)
    if data_dir is not None:
        return load_glue_from_dir(name, data_dir, splits=splits)
    import datasets

    from ..file_utils import hub_endpoint, hub_reachable, is_offline_mode

    offline = is_offline_mode() or datasets.config.HF_DATASETS_OFFLINE
    if not offline and not hub_reachable():  # fail now rather than after half a minute of retries
        raise GlueDataError(f"cannot load {HUB_GLUE}/{name}: the hub, {hub_endpoint()}, cannot be reached; pass "
                            f"--data_dir with the GLUE files of {name}, or set HF_DATASETS_OFFLINE=1 to read a copy "
                            "cached by an earlier download")
    try:
        return datasets.load_dataset(HUB_GLUE, name, cache_dir=cache_dir)
    except Exception as e:  # offline, no cache, hub errors: all end the same way for the user
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GlueDataError(f"cannot load {HUB_GLUE}/{name} from the Hub ({type(e).__name__}: {reason}); "
                            f"offline, pass --data_dir with the GLUE files of {name}") from e


def glue_compute_metrics(task_name, preds, labels):
    """The GLUE metrics of a task (names as the `glue` metric of `datasets`), plus `combined_score`, their mean,
    when there are several. `preds` are class ids (or scores for STS-B), same shape as `labels`."""
    preds, labels = np.asarray(preds), np.asarray(labels)
    if preds.shape != labels.shape:
        raise ValueError(f"predictions {preds.shape} and labels {labels.shape} differ in shape")
    name = _normalize(task_name)
    # scipy/sklearn only where a metric needs them: importing them costs seconds, accuracy needs neither
    if name == "cola":
        from sklearn.metrics import matthews_corrcoef
        result = {"matthews_correlation": float(matthews_corrcoef(labels, preds))}
    elif name == "stsb":
        from scipy.stats import pearsonr, spearmanr
        result = {"pearson": float(pearsonr(preds, labels)[0]), "spearmanr": float(spearmanr(preds, labels)[0])}
    elif name in ("mrpc", "qqp"):
        from sklearn.metrics import f1_score
        result = {"accuracy": float((preds == labels).mean()), "f1": float(f1_score(labels, preds))}
    elif name in ("sst2", "mnli", "mnlimm", "mnlimatched", "mnlimismatched", "qnli", "rte", "wnli", "ax"):
        result = {"accuracy": float((preds == labels).mean())}
    else:
        raise KeyError(f"unknown GLUE task {task_name!r}")
    if len(result) > 1:
        result["combined_score"] = float(np.mean(list(result.values())))
    return result


# GLUE server submission files: one per task, "index<TAB>prediction"; NLI tasks write class names, the others the
# class id (STS-B the score)
GLUE_SUBMISSION_FILES = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qqp": "QQP", "stsb": "STS-B",
                         "mnli": "MNLI-m", "mnli-mm": "MNLI-mm", "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI",
                         "ax": "AX"}
_NAMED_SUBMISSIONS = {"mnli", "mnli-mm", "qnli", "rte", "ax"}


def glue_submission(task_name, predictions, idx=None):
    """(file name, text) of the GLUE server file for `predictions` (class ids in the Hub's label order, or STS-B
    scores) of the test examples numbered `idx` (default 0, 1, ...)."""
    key = "mnli-mm" if _normalize(task_name) in ("mnlimm", "mnlimismatched") else _normalize(task_name)
    if key not in GLUE_SUBMISSION_FILES:
        raise KeyError(f"unknown GLUE task {task_name!r}")
    names = GLUE_TASKS["mnli" if key == "mnli-mm" else key].label_names
    idx = range(len(predictions)) if idx is None else idx
    lines = ["index\tprediction"]
    for i, p in zip(idx, predictions):
        value = f"{float(p):.3f}" if names is None else names[int(p)] if key in _NAMED_SUBMISSIONS else str(int(p))
        lines.append(f"{i}\t{value}")
    return GLUE_SUBMISSION_FILES[key] + ".tsv", "\n".join(lines) + "\n"
