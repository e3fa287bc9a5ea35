"""End-to-end runs of examples/text-classification/run_glue.py on a tiny random RoBERTa, one per GLUE file layout."""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
from glue_utils import FILLER, MARKERS, ODD, write_glue_task  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "text-classification"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_glue = _load("run_glue")
make_tiny = _load("make_tiny")

LORA = ["--apply_lora", "--lora_r", "2", "--lora_alpha", "4"]
SPEED = ("_runtime", "_per_second")  # wall-clock metrics legitimately differ between runs


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("run_glue")
    texts = [" ".join(FILLER + MARKERS + ODD)] * 2 + make_tiny.write_sst2_like(str(root / "sst2like"), 64, 16, 8)
    model = str(root / "model")
    vocab = make_tiny.train_tokenizer(texts, model, vocab_size=260, model_max_length=64)
    make_tiny.make_model(model, vocab, hidden_size=16, heads=2, layers=2, max_seq_length=64)
    return {"root": root, "model": model, "trained": {}}


def run(work, out, *args):
    argv = ["--model_name_or_path", work["model"], "--output_dir", str(out), "--overwrite_output_dir",
            "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16", "--learning_rate", "1e-2",
            "--num_train_epochs", "1", "--seed", "0", "--report_to", "none", "--disable_tqdm", "true",
            "--save_strategy", "no", *args]
    return run_glue.main(argv)


def error_of(work, out, *args):
    with pytest.raises(SystemExit) as info:
        run(work, out, *args)
    message = str(info.value.code)
    assert "\n" not in message
    return message


def eval_metrics(folder, prefix="eval"):
    data = json.loads((Path(folder) / f"{prefix}_results.json").read_text())
    return {k: v for k, v in data.items() if not k.endswith(SPEED)}


def trained(work, task):
    """Train `task` once per module (LoRA, train+eval+predict); later tests reuse its output folder."""
    if task not in work["trained"]:
        data = write_glue_task(task, str(work["root"] / "glue"), n=16, seed=1)[0]
        out = work["root"] / f"out_{task}"
        run(work, out, "--task_name", task, "--data_dir", data, "--do_train", "--do_eval", "--do_predict", *LORA)
        work["trained"][task] = (data, out)
    return work["trained"][task]


EXPECTED_METRICS = {
    "cola": {"matthews_correlation"}, "sst2": {"accuracy"}, "mrpc": {"accuracy", "f1", "combined_score"},
    "qqp": {"accuracy", "f1", "combined_score"}, "stsb": {"pearson", "spearmanr", "combined_score"},
    "mnli": {"accuracy"}, "qnli": {"accuracy"}, "rte": {"accuracy"}, "wnli": {"accuracy"},
}
SUBMISSION = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qqp": "QQP", "stsb": "STS-B", "qnli": "QNLI",
              "rte": "RTE", "wnli": "WNLI"}
NAMED = {"mnli": ["entailment", "neutral", "contradiction"], "qnli": ["entailment", "not_entailment"],
         "rte": ["entailment", "not_entailment"]}


@pytest.mark.parametrize("task", list(EXPECTED_METRICS))
def test_train_eval_predict_and_reload_from_lora_path(work, tmp_path, task):
    data, out = trained(work, task)
    for name in ("eval_results.json", "all_results.json", "train_results.json", "trainer_state.json",
                 "pytorch_model_lora.bin", "config.json"):
        assert (out / name).is_file(), name
    metrics = eval_metrics(out)
    assert {k[len("eval_"):] for k in metrics} == EXPECTED_METRICS[task] | {"loss", "samples"}
    assert metrics["eval_samples"] == 16
    if task == "mnli":  # matched and mismatched are both kept, in separate files and in all_results.json
        mm = eval_metrics(out, "eval_mnli-mm")
        assert set(mm) == {"eval_mnli-mm_accuracy", "eval_mnli-mm_loss", "eval_mnli-mm_samples"}
        everything = json.loads((out / "all_results.json").read_text())
        assert {**metrics, **mm}.items() <= everything.items()

    # test predictions: 4.4.2's test_results file and the GLUE server file
    predictions = {"mnli": ["mnli", "mnli-mm"]}.get(task, [task])
    for name in predictions:
        lines = (out / f"test_results_{name}.txt").read_text().splitlines()
        assert lines[0] == "index\tprediction" and len(lines) == 17
        server = {"mnli": "MNLI-m", "mnli-mm": "MNLI-mm"}.get(name) or SUBMISSION[task]
        rows = [line.split("\t") for line in (out / f"{server}.tsv").read_text().splitlines()]
        assert rows[0] == ["index", "prediction"] and [r[0] for r in rows[1:]] == [str(i) for i in range(16)]
        values = [r[1] for r in rows[1:]]
        if task == "stsb":
            [float(v) for v in values]
        elif task in NAMED:
            assert set(values) <= set(NAMED[task])
        else:
            assert set(values) <= {"0", "1"}

    # the LoRA file alone (+ the untouched base model) gives back exactly the same evaluation
    again = tmp_path / "again"
    run(work, again, "--task_name", task, "--data_dir", data, "--do_eval", *LORA,
        "--lora_path", str(out / "pytorch_model_lora.bin"))
    assert eval_metrics(again) == metrics
    if task == "mnli":
        assert eval_metrics(again, "eval_mnli-mm") == eval_metrics(out, "eval_mnli-mm")


def test_training_learns_and_is_reproducible(work, tmp_path):
    data = str(work["root"] / "sst2like")
    args = ["--task_name", "sst2", "--data_dir", data, "--do_train", "--do_eval", *LORA, "--num_train_epochs", "6"]
    first = run(work, tmp_path / "a", *args)
    second = run(work, tmp_path / "b", *args)
    assert first["eval_accuracy"] > 0.75  # a marker-word task; chance is 0.5
    a, b = (torch.load(tmp_path / d / "pytorch_model_lora.bin") for d in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # only LoRA tensors and the head are trained and saved
    assert all("lora_" in k or k.startswith("classifier.") for k in a)


def test_padding_to_max_length_changes_nothing(work, tmp_path):
    data, out = trained(work, "rte")
    run(work, tmp_path / "padded", "--task_name", "rte", "--data_dir", data, "--do_eval", *LORA,
        "--lora_path", str(out / "pytorch_model_lora.bin"), "--pad_to_max_length", "--max_seq_length", "64")
    padded, dynamic = eval_metrics(tmp_path / "padded"), eval_metrics(out)
    assert padded["eval_accuracy"] == dynamic["eval_accuracy"]
    # padded keys are masked out exactly; only float summation order over longer rows may differ
    assert padded["eval_loss"] == pytest.approx(dynamic["eval_loss"], abs=1e-6)


def test_mnli_lora_warm_starts_a_two_label_task(work, tmp_path, caplog):
    _, mnli_out = trained(work, "mnli")
    data = write_glue_task("rte", str(tmp_path), n=8)[0]
    run(work, tmp_path / "out", "--task_name", "rte", "--data_dir", data, "--do_eval", *LORA,
        "--lora_path", str(mnli_out / "pytorch_model_lora.bin"))
    assert "head is re-initialised" in caplog.text
    assert eval_metrics(tmp_path / "out")["eval_samples"] == 8


@pytest.fixture(scope="module")
def bad_checkpoints(work):
    _, out = trained(work, "sst2")
    good = torch.load(out / "pytorch_model_lora.bin")
    folder = work["root"] / "bad"
    folder.mkdir()
    missing = dict(good)
    del missing[next(k for k in good if "lora_A" in k)]
    torch.save(missing, folder / "missing.bin")
    (folder / "notes.txt").write_text("not a checkpoint\n")
    torch.manual_seed(0)
    from transformers import RobertaConfig, RobertaForSequenceClassification
    from transformers.lora import lora_state_dict

    wide = RobertaConfig(vocab_size=260, hidden_size=24, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=48, max_position_embeddings=66, apply_lora=True, lora_r=2, lora_alpha=4)
    torch.save(lora_state_dict(RobertaForSequenceClassification(wide)), folder / "wide.bin")
    return {"good": out / "pytorch_model_lora.bin", "folder": folder, "data": trained(work, "sst2")[0]}


@pytest.mark.parametrize(
    "case, flags, expected",
    [
        ("good", ["--lora_r", "4", "--lora_alpha", "4"], r"lora_A has shape \[2, 16\] in the file but \[4, 16\]"),
        ("wide.bin", ["--lora_r", "2", "--lora_alpha", "4"], r"has shape \[\d+, 24\] in the file but \[\d+, 16\]"),
        ("missing.bin", ["--lora_r", "2", "--lora_alpha", "4"], r"1 LoRA tensor\(s\) of the model are missing"),
        ("notes.txt", ["--lora_r", "2", "--lora_alpha", "4"], r"notes.txt"),
        ("absent.bin", ["--lora_r", "2", "--lora_alpha", "4"], r"absent.bin"),
    ],
)
def test_wrong_lora_path_fails_with_one_line(work, tmp_path, bad_checkpoints, case, flags, expected):
    path = bad_checkpoints["good"] if case == "good" else bad_checkpoints["folder"] / case
    message = error_of(work, tmp_path / "out", "--task_name", "sst2", "--data_dir", bad_checkpoints["data"],
                       "--do_eval", "--apply_lora", *flags, "--lora_path", str(path))
    assert message.startswith("run_glue.py: error: ") and str(path) in message
    assert re.search(expected, message), message
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_bad_input_fails_with_one_line(work, tmp_path):
    data = write_glue_task("rte", str(tmp_path), n=4)[0]
    os.remove(os.path.join(data, "test.tsv"))
    message = error_of(work, tmp_path / "o", "--task_name", "rte", "--data_dir", data, "--do_predict")
    assert message == f"run_glue.py: error: {data}/test.tsv not found: the test split of rte is needed"
    os.makedirs(tmp_path / "full")
    (tmp_path / "full" / "x").write_text("x")
    argv = ["--model_name_or_path", work["model"], "--output_dir", str(tmp_path / "full"), "--task_name", "rte",
            "--data_dir", data, "--do_train"]
    with pytest.raises(SystemExit, match="exists and is not empty: pass --overwrite_output_dir"):
        run_glue.main(argv)
    message = error_of(work, tmp_path / "o", "--task_name", "rte", "--data_dir", data, "--do_eval",
                       "--lora_path", "x.bin")
    assert "--lora_path needs --apply_lora" in message


def test_cli_errors_exit_nonzero_with_one_line(work, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    base = [sys.executable, str(EXAMPLES / "run_glue.py"), "--model_name_or_path", work["model"],
            "--output_dir", str(tmp_path / "o"), "--do_eval"]
    unknown = subprocess.run(base + ["--task_name", "sst3"], capture_output=True, text=True, env=env, timeout=120)
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [unknown.stderr.strip()]
    assert "unknown task 'sst3'" in unknown.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = subprocess.run(base + ["--task_name", "sst2", "--data_dir", str(empty)],
                             capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == f"run_glue.py: error: {empty}/dev.tsv not found: the " \
                                                      "validation split of sst2 is needed"


def test_csv_and_json_files(work, tmp_path):
    import csv

    rows = [("the good film", "lovely scene", "pos"), ("a bad plot", "awful story", "neg")] * 8
    with open(tmp_path / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows([("sentence1", "sentence2", "label"), *rows])
    with open(tmp_path / "dev.json", "w") as f:
        f.writelines(json.dumps(dict(zip(("sentence1", "sentence2", "label"), r))) + "\n" for r in rows)
    message = error_of(work, tmp_path / "o", "--train_file", str(tmp_path / "train.csv"),
                       "--validation_file", str(tmp_path / "dev.json"), "--do_train")
    assert "all be .csv or all be .json" in message
    with open(tmp_path / "dev.csv", "w", newline="") as f:
        csv.writer(f).writerows([("sentence1", "sentence2", "label"), *rows])
    result = run(work, tmp_path / "o", "--train_file", str(tmp_path / "train.csv"), "--validation_file",
                 str(tmp_path / "dev.csv"), "--do_train", "--do_eval", *LORA)
    assert result["eval_samples"] == 16 and 0.0 <= result["eval_accuracy"] <= 1.0


def test_quickstart_script(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "quickstart.sh"), str(tmp_path / "qs")],
                          capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "OK: identical metrics" in proc.stdout
    accuracy = json.loads((tmp_path / "qs" / "train" / "eval_results.json").read_text())["eval_accuracy"]
    assert accuracy > 0.75  # learnable made-up task, chance 0.5
