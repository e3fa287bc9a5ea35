import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from transformers.data import glue
from transformers.data.glue import GlueDataError, glue_compute_metrics, load_glue, load_glue_from_dir

sys.path.insert(0, os.path.dirname(__file__))
from glue_utils import DIR_NAMES, HEADERS, HUB_COLUMNS, HUB_LABELS, split_files, write_glue_task  # noqa: E402

SHARED_GLUE = Path(__file__).resolve().parents[1] / "../shared/data/glue"
EXCERPTS = Path(__file__).parent / "fixtures" / "glue_excerpts"  # real layouts of the tasks ../shared lacks


@pytest.mark.parametrize("task", ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli", "ax"])
def test_every_task_layout_reads_like_the_hub(tmp_path, task):
    folder, expected = write_glue_task(task, str(tmp_path), n=12, bom=(task == "mrpc"))
    data = load_glue(task, data_dir=folder)
    assert list(data) == list(split_files(task))
    for split, records in expected.items():
        ds = data[split]
        assert ds.column_names == HUB_COLUMNS[task] + ["label", "idx"]
        if HUB_LABELS[task] is None:
            assert ds.features["label"].dtype == "float32"
        else:
            assert ds.features["label"].names == HUB_LABELS[task]
        assert ds.to_list() == records
    # the parent folder of the GLUE distribution works as well
    assert load_glue(task, data_dir=str(tmp_path))[split].to_list() == expected[split]


def test_task_name_spellings(tmp_path):
    folder, expected = write_glue_task("stsb", str(tmp_path), n=3)
    for name in ("stsb", "STS-B", "sts-b"):
        assert load_glue(name, data_dir=folder)["validation"].to_list() == expected["validation"]
    with pytest.raises(GlueDataError, match="unknown GLUE task 'sst3'"):
        load_glue("sst3", data_dir=folder)


def test_missing_splits_are_left_out_and_required_splits_are_named(tmp_path):
    folder, _ = write_glue_task("rte", str(tmp_path), n=3)
    (tmp_path / "empty").mkdir()
    os.remove(os.path.join(folder, "test.tsv"))
    assert list(load_glue_from_dir("rte", folder)) == ["train", "validation"]
    with pytest.raises(GlueDataError, match=r"RTE/test.tsv not found: the test split of rte is needed"):
        load_glue_from_dir("rte", folder, splits=["train", "test"])
    with pytest.raises(GlueDataError, match="RTE looks like the RTE folder, not WNLI"):
        load_glue_from_dir("wnli", folder)  # same columns and label names: must not be read as WNLI
    with pytest.raises(GlueDataError, match=r"empty: no WNLI files \(expected train.tsv, dev.tsv, test.tsv\)"):
        load_glue_from_dir("wnli", str(tmp_path / "empty"))
    with pytest.raises(GlueDataError, match="is not a directory"):
        load_glue_from_dir("rte", os.path.join(folder, "nope"))


def _rewrite(path, lineno, text):
    lines = open(path, encoding="utf-8").read().split("\n")
    lines[lineno - 1] = text
    open(path, "w", encoding="utf-8").write("\n".join(lines))


@pytest.mark.parametrize(
    "task, line, error",
    [
        ("sst2", "a film\t1\textra", r"dev.tsv:3: expected 2 tab-separated fields \(sentence, label\), got 3"),
        ("rte", "7\tonly one sentence", r"dev.tsv:3: expected 4 tab-separated fields .* got 2"),
        ("rte", "7\ta\tb\tmaybe", r"dev.tsv:3: label 'maybe' is not one of \['entailment', 'not_entailment'\]"),
        ("sst2", "a film\t2", r"dev.tsv:3: label '2' is not one of"),
        ("stsb", "\t".join(["x"] * 9 + ["high"]), r"dev.tsv:3: label 'high' is not a number"),
        ("cola", "gj04\t1\t", r"dev.tsv:2: expected 4 tab-separated fields"),  # CoLA dev has no header
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, task, line, error):
    folder, _ = write_glue_task(task, str(tmp_path), n=4)
    _rewrite(os.path.join(folder, "dev.tsv"), 2 if task == "cola" else 3, line)
    with pytest.raises(GlueDataError, match=error):
        load_glue(task, data_dir=folder)


def test_unlabeled_dev_file_and_bad_encoding_are_refused(tmp_path):
    folder, _ = write_glue_task("qnli", str(tmp_path), n=4)
    _rewrite(os.path.join(folder, "dev.tsv"), 1, "index\tquestion\tsentence\tlabel_x")
    with pytest.raises(GlueDataError, match=r"dev.tsv: no 'label' column in header"):
        load_glue("qnli", data_dir=folder)
    with open(os.path.join(folder, "dev.tsv"), "wb") as f:
        f.write(b"index\tquestion\tsentence\tlabel\n0\tq\xe9\ts\tentailment\n")
    with pytest.raises(GlueDataError, match=r"dev.tsv: not UTF-8 text"):
        load_glue("qnli", data_dir=folder)


def test_hub_path_asks_for_nyu_mll_glue(monkeypatch):
    import datasets

    from transformers import file_utils

    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append((a, k)) or "dataset")
    monkeypatch.setattr(file_utils, "hub_reachable", lambda *a, **k: True)  # the question is the path, not the net
    assert load_glue("SST-2", cache_dir="/c") == "dataset"
    assert calls == [(("nyu-mll/glue", "sst2"), {"cache_dir": "/c"})]


def test_hub_path_offline_gives_one_clear_error(tmp_path):
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path))
    code = "from transformers.data.glue import load_glue; load_glue('rte')"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("transformers.data.glue.GlueDataError: cannot load nyu-mll/glue/rte from the Hub")
    assert "pass --data_dir" in last


@pytest.mark.skipif(not SHARED_GLUE.is_dir(), reason="needs ../shared/data/glue")
@pytest.mark.parametrize(
    "task, folder, rows, first_dev",
    [  # row counts of the Hub's glue dataset; first dev rows as in the files
        ("cola", "CoLA", (8551, 1043, 1063),
         {"sentence": "The sailors rode the breeze clear of the rocks.", "label": 1}),
        ("sst2", "SST-2", (67349, 872, 1821),
         {"sentence": "it 's a charming and often affecting journey . ", "label": 1}),
        ("rte", "RTE", (2490, 277, 3000), {"sentence2": "Christopher Reeve had an accident.", "label": 1}),
        ("stsb", "STS-B", (5749, 1500, 1379), {"sentence1": "A man with a hard hat is dancing.", "label": 5.0}),
        ("wnli", "WNLI", (635, 71, 146), {"sentence2": "The hair has to be cleaned.", "label": 0}),
    ],
)
def test_real_glue_files(task, folder, rows, first_dev):
    data = load_glue(task, data_dir=str(SHARED_GLUE / folder))
    assert tuple(data[s].num_rows for s in ("train", "validation", "test")) == rows
    dev0 = data["validation"][0]
    assert {k: dev0[k] for k in first_dev} == first_dev and dev0["idx"] == 0
    assert set(data["test"]["label"]) == {-1}


@pytest.mark.parametrize("task", ["mrpc", "qqp", "mnli", "qnli", "ax"])
def test_layouts_in_glue_utils_are_the_real_ones(task):
    """The headers write_glue_task uses everywhere, checked byte for byte against the real-layout excerpts."""
    for split, filename in split_files(task).items():
        raw = (EXCERPTS / DIR_NAMES[task] / filename).read_bytes()
        kind = split.split("_")[0].replace("validation", "dev")
        assert raw.startswith(b"\xef\xbb\xbf") == (task == "mrpc" and kind != "test"), filename  # MRPC's BOM
        header = raw.decode("utf-8-sig").split("\n")[0]
        assert header == "\t".join(HEADERS[task][kind]), (task, filename)


# (split, row) -> the record the Hub would give, typed by hand from the excerpt files
EXCERPT_ROWS = {
    "mrpc": {("train", 2): {"sentence1": '" We will not give up on this town , the mayor told the crowd on Friday .',
                            "sentence2": "The mayor told the crowd on Friday that the city would not give up on the "
                                         "town .", "label": 1, "idx": 2},
             ("test", 1): {"sentence1": 'He said the deal was " fair to everyone " and would close in May .',
                           "sentence2": "The deal is expected to close in May .", "label": -1, "idx": 1}},
    "qqp": {("validation", 0): {"question1": "Which is the best café in Zürich?",
                                "question2": "Where can I find good coffee in Zurich?", "label": 1, "idx": 0},
            ("train", 2): {"question1": "What is the integral of [math]x^2[/math]?",
                           "question2": "How do you integrate [math]x^2[/math] dx?", "label": 1, "idx": 2}},
    "mnli": {("train", 2): {"premise": "The café opens at dawn.", "hypothesis": "The café never opens before noon. ",
                            "label": 2, "idx": 2},
             ("validation_matched", 0): {"premise": "The senator voted twice.", "hypothesis": "The senator voted.",
                                         "label": 1, "idx": 0},  # gold_label neutral, label1 entailment
             ("validation_mismatched", 1): {"premise": 'um we lost the "big one', "hypothesis": "We won the big one.",
                                            "label": 2, "idx": 1},
             ("test_mismatched", 0): {"premise": "yeah it's a nice town", "hypothesis": "The town is pleasant.",
                                      "label": -1, "idx": 0}},
    "qnli": {("train", 1): {"question": "Who designed the tower?",
                            "sentence": 'The tower, called "the Needle" by residents, is 160 m tall.',
                            "label": 1, "idx": 1},
             ("test", 0): {"question": "What year did the school open?",
                           "sentence": 'The school was founded by monks in 1214."', "label": -1, "idx": 0}},
    "ax": {("test", 2): {"premise": 'He said "no" to the offer.', "hypothesis": "He accepted the offer.",
                         "label": -1, "idx": 2}},
}
EXCERPT_SIZES = {"mrpc": [3, 2, 2], "qqp": [3, 2, 2], "mnli": [3, 3, 2, 2, 2], "qnli": [3, 2, 2], "ax": [3]}


@pytest.mark.parametrize("task", list(EXCERPT_ROWS))
def test_real_layout_excerpts_read_like_the_hub(task):
    data = load_glue(task, data_dir=str(EXCERPTS))  # the GLUE root: each task's folder is found by its name
    assert list(data) == list(split_files(task))
    assert [data[split].num_rows for split in data] == EXCERPT_SIZES[task]
    for (split, row), record in EXCERPT_ROWS[task].items():
        assert data[split][row] == record, (split, row)
    for split in data:
        assert data[split].column_names == HUB_COLUMNS[task] + ["label", "idx"]
        assert data[split]["idx"] == list(range(data[split].num_rows))


# Reference values computed by hand from the confusion matrix / closed forms, not by the code under test.
PREDS = [1, 1, 0, 0, 1, 0, 1, 1]
LABELS = [1, 0, 0, 1, 1, 0, 1, 0]  # tp=3 fp=2 fn=1 tn=2


def test_classification_metrics_on_known_inputs():
    tp, fp, fn, tn = 3, 2, 1, 2
    acc = (tp + tn) / 8
    f1 = 2 * tp / (2 * tp + fp + fn)
    mcc = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    # float64 throughout; 1e-12 leaves room only for summation order
    for task in ("mrpc", "qqp"):
        got = glue_compute_metrics(task, np.array(PREDS), np.array(LABELS))
        assert got == pytest.approx({"accuracy": acc, "f1": f1, "combined_score": (acc + f1) / 2}, abs=1e-12)
    assert glue_compute_metrics("cola", PREDS, LABELS) == pytest.approx({"matthews_correlation": mcc}, abs=1e-12)
    for task in ("sst2", "mnli", "mnli-mm", "qnli", "rte", "wnli"):
        assert glue_compute_metrics(task, PREDS, LABELS) == {"accuracy": acc}
    mnli = glue_compute_metrics("mnli", [0, 1, 2, 2], [0, 2, 2, 1])
    assert mnli == {"accuracy": 0.5}


def test_stsb_metrics_on_known_inputs():
    preds = np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=np.float32)
    labels = np.array([2.0, 4.0, 5.0, 4.0, 5.0], dtype=np.float32)
    x, y = preds - preds.mean(), labels - labels.mean()
    pearson = (x @ y) / np.sqrt((x @ x) * (y @ y))  # = 0.7745966692...
    ranks_y = np.array([1.0, 2.5, 4.5, 2.5, 4.5])  # ties get their mean rank
    rx, ry = np.arange(1.0, 6.0) - 3.0, ranks_y - ranks_y.mean()
    spearman = (rx @ ry) / np.sqrt((rx @ rx) * (ry @ ry))
    got = glue_compute_metrics("stsb", preds, labels)
    # float32 inputs: agreement to 1e-6 relative is what float32 data allows
    assert got == pytest.approx(
        {"pearson": pearson, "spearmanr": spearman, "combined_score": (pearson + spearman) / 2}, rel=1e-6
    )
    assert abs(got["pearson"] - 0.7745966692) < 1e-6


def test_metric_input_checks():
    with pytest.raises(ValueError, match="differ in shape"):
        glue_compute_metrics("sst2", [1, 0], [1])
    with pytest.raises(KeyError, match="unknown GLUE task"):
        glue_compute_metrics("imdb", [1], [1])


def test_task_to_keys_matches_the_hub_columns():
    for task, columns in HUB_COLUMNS.items():
        assert glue.GLUE_TASK_TO_KEYS[task] == (columns[0], columns[1] if len(columns) > 1 else None)


def test_glue_server_submission_format():
    assert glue.glue_submission("rte", [0, 1], idx=[5, 7]) == (
        "RTE.tsv", "index\tprediction\n5\tentailment\n7\tnot_entailment\n")
    assert glue.glue_submission("mnli-mm", [2]) == ("MNLI-mm.tsv", "index\tprediction\n0\tcontradiction\n")
    assert glue.glue_submission("mnli", [1]) == ("MNLI-m.tsv", "index\tprediction\n0\tneutral\n")
    assert glue.glue_submission("cola", [1, 0]) == ("CoLA.tsv", "index\tprediction\n0\t1\n1\t0\n")
    assert glue.glue_submission("stsb", [3.14159]) == ("STS-B.tsv", "index\tprediction\n0\t3.142\n")
