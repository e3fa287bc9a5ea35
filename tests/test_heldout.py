"""Regression tests for bugs found by probing with inputs the other tests never used: tokenizer folders as today's
transformers saves them, and run_glue.py on user csv/json files (test files without labels, label sets that differ
between files, empty or unreadable files). Fixtures: tests/fixtures/make_heldout_fixtures.py (latest transformers).
"""
import csv
import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

from transformers import AutoTokenizer
from transformers.models.deberta_v2 import DebertaV2Tokenizer, DebertaV2TokenizerFast

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "heldout"
TINY_SPM = ROOT / "tests" / "fixtures" / "deberta_v2" / "tokenizer" / "tiny_spm.model"
EXAMPLES = ROOT / "examples" / "text-classification"
TEXTS = ["The quick brown fox jumps over the lazy dog.", "Hello, World! [MASK] don't stop",
         "naïve café, Straße and 日本語", "  spaces   and\ttabs  ", "a [SEP] inside"]  # = make_heldout_fixtures.TEXTS


# ---- tokenizers ---------------------------------------------------------------------------------------------------
def test_deberta_folder_saved_by_latest_transformers_loads_with_its_ids():
    # Bug: tokenizer_config.json names "DebertaV2Tokenizer" and the folder has only tokenizer.json, so AutoTokenizer
    # picked the sentencepiece class and crashed with a TypeError (missing vocab_file).
    tok = AutoTokenizer.from_pretrained(FIX / "deberta_hf_saved")
    assert isinstance(tok, DebertaV2TokenizerFast)
    expected = json.loads((FIX / "deberta_hf_saved_ids.json").read_text())
    pairs = (TEXTS, TEXTS[::-1])
    assert tok(TEXTS)["input_ids"] == expected["single"]
    assert tok(*pairs)["input_ids"] == expected["pair"]
    assert tok(*pairs)["token_type_ids"] == expected["pair_types"]
    assert tok(*pairs, truncation=True, max_length=12)["input_ids"] == expected["pair_trunc"]
    # the sentencepiece class cannot read such a folder: say so in one line instead of a TypeError
    with pytest.raises(ValueError, match="sentencepiece model"):
        AutoTokenizer.from_pretrained(FIX / "deberta_hf_saved", use_fast=False)


def test_auto_tokenizer_honours_use_fast_for_a_named_slow_class(tmp_path):
    shutil.copy(TINY_SPM, tmp_path / "spm.model")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "DebertaV2Tokenizer"}))
    assert isinstance(AutoTokenizer.from_pretrained(tmp_path), DebertaV2TokenizerFast)  # 4.4.2: use_fast=True
    assert isinstance(AutoTokenizer.from_pretrained(tmp_path, use_fast=False), DebertaV2Tokenizer)


ADDED_TEXTS = ["a <extra> token", "a<extra>token  <extra>", "<extra>", "two <extra><extra> here [MASK] <extra>"]


@pytest.fixture
def spm_with_added_token(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(TINY_SPM, src / "spm.model")
    (src / "added_tokens.json").write_text(json.dumps({"<extra>": 420}))  # tiny_spm.model has 420 pieces
    return src


@pytest.mark.parametrize("cls", [DebertaV2Tokenizer, DebertaV2TokenizerFast])
def test_added_tokens_eat_surrounding_whitespace_like_442(cls, spm_with_added_token):
    # Bug: the fast tokenizer kept the space before a (non-special) token of added_tokens.json as an extra "▁".
    expected = json.loads((FIX / "deberta_added_token_t442.json").read_text())
    tok = cls.from_pretrained(spm_with_added_token)
    assert tok(ADDED_TEXTS)["input_ids"] == expected["single"]
    assert tok(ADDED_TEXTS, ADDED_TEXTS[::-1])["input_ids"] == expected["pair"]


def test_fast_deberta_tokenizer_saves_the_sentencepiece_files(tmp_path, spm_with_added_token):
    # Bug: save_pretrained wrote tokenizer.json only, so run_glue's output folder could not be read by the
    # sentencepiece tokenizer (use_fast=False) nor by transformers 4.4.2, which has no fast DeBERTa tokenizer.
    fast = DebertaV2TokenizerFast.from_pretrained(spm_with_added_token)
    fast.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "spm.model").read_bytes() == TINY_SPM.read_bytes()
    assert json.loads((tmp_path / "saved" / "added_tokens.json").read_text()) == {"<extra>": 420}
    slow = DebertaV2Tokenizer.from_pretrained(tmp_path / "saved")
    texts = TEXTS + ADDED_TEXTS
    assert slow(texts, texts[::-1])["input_ids"] == fast(texts, texts[::-1])["input_ids"]
    again = DebertaV2TokenizerFast.from_pretrained(tmp_path / "saved")  # and saving into the same folder works
    again.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "spm.model").read_bytes() == TINY_SPM.read_bytes()


# ---- run_glue.py on csv/json files --------------------------------------------------------------------------------
def _load(name):
    spec = importlib.util.spec_from_file_location(f"heldout_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_glue = _load("run_glue")
make_tiny = _load("make_tiny")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("heldout_glue")
    texts = make_tiny.write_sst2_like(str(root / "sst2"), 48, 16, 8)
    vocab = make_tiny.train_tokenizer(texts, str(root / "model"), vocab_size=300, model_max_length=32)
    make_tiny.make_model(str(root / "model"), vocab, hidden_size=16, heads=2, layers=1, max_seq_length=32)
    rows = [line.split("\t") for line in (root / "sst2" / "train.tsv").read_text().splitlines()[1:]]
    return {"root": root, "rows": [(s, "pos" if label == "1" else "neg") for s, label in rows]}


def write(path, rows, header):
    if path.suffix == ".csv":
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows([header, *rows])
    else:
        path.write_text("".join(json.dumps(dict(zip(header, r))) + "\n" for r in rows))


def run(work, out, *args):
    return run_glue.main(["--model_name_or_path", str(work["root"] / "model"), "--output_dir", str(out),
                          "--per_device_train_batch_size", "8", "--num_train_epochs", "1", "--seed", "0",
                          "--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no", *args])


def error_of(work, out, *args):
    with pytest.raises(SystemExit) as info:
        run(work, out, *args)
    message = str(info.value.code)
    assert "\n" not in message and message.startswith("run_glue.py: error: ")
    return message


@pytest.mark.parametrize("ext", ["csv", "json"])
def test_test_file_without_label_column_is_predicted(work, tmp_path, ext):
    # Bug: loaded together with labelled files, the test file got a label column of None -> KeyError: None.
    rows = work["rows"]
    files = {name: tmp_path / f"{name}.{ext}" for name in ("train", "dev", "test")}
    write(files["train"], rows[:32], ("sentence", "label"))
    write(files["dev"], rows[32:], ("sentence", "label"))
    write(files["test"], [(s,) for s, _ in rows[32:]], ("sentence",))
    result = run(work, tmp_path / "o", "--train_file", str(files["train"]), "--validation_file", str(files["dev"]),
                 "--test_file", str(files["test"]), "--do_train", "--do_eval", "--do_predict")
    assert result["eval_samples"] == len(rows) - 32
    lines = (tmp_path / "o" / "test_results_None.txt").read_text().splitlines()  # 4.4.2's name without a task
    assert lines[0] == "index\tprediction" and len(lines) == len(rows) - 32 + 1
    assert {line.split("\t")[1] for line in lines[1:]} <= {"neg", "pos"}


def test_bad_data_files_fail_with_one_line(work, tmp_path):
    rows = work["rows"]
    train, dev = tmp_path / "train.csv", tmp_path / "dev.csv"
    write(train, rows[:32], ("sentence", "label"))
    write(dev, [(s, "maybe" if i == 3 else label) for i, (s, label) in enumerate(rows[32:])], ("sentence", "label"))
    args = ("--do_train", "--do_eval")
    # a dev label the train file never has (was: KeyError 'maybe' deep inside datasets.map)
    message = error_of(work, tmp_path / "o", "--train_file", str(train), "--validation_file", str(dev), *args)
    assert message.endswith(f"{dev} has label(s) ['maybe'] that the train file {train} does not have "
                            "(['neg', 'pos']): use the same labels")
    # empty file, header only (was: a datasets traceback)
    empty, header = tmp_path / "empty.csv", tmp_path / "header.csv"
    empty.write_text("")
    write(header, [], ("sentence", "label"))
    message = error_of(work, tmp_path / "o", "--train_file", str(empty), "--validation_file", str(dev), *args)
    assert message.endswith(f"{empty} has no examples (the train file)")
    message = error_of(work, tmp_path / "o", "--train_file", str(train), "--validation_file", str(header), *args)
    assert message.endswith(f"{header} has no examples (the validation file)")
    # a train file without a label column (was: a CastError traceback)
    unlabelled = tmp_path / "unlabelled.csv"
    write(unlabelled, [(s,) for s, _ in rows[:32]], ("sentence",))
    message = error_of(work, tmp_path / "o", "--train_file", str(unlabelled), "--validation_file", str(dev), *args)
    assert message.endswith(f"{unlabelled} has no 'label' column: name the column holding the labels 'label'")
    # malformed json names the file
    good, bad = tmp_path / "train.json", tmp_path / "bad.json"
    write(good, rows[:32], ("sentence", "label"))
    bad.write_text('{"sentence": "a", "label": "pos"}\n{"sentence": "b" "label": "neg"}\n')
    message = error_of(work, tmp_path / "o", "--train_file", str(good), "--validation_file", str(bad), *args)
    assert f"{bad} cannot be read as json (" in message
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_predict_only_run_writes_its_results(work, tmp_path):
    # Bug: with --do_predict alone nothing had created output_dir, so writing the predictions raised
    # FileNotFoundError after all the work was done.
    run(work, tmp_path / "new" / "o", "--task_name", "sst2", "--data_dir", str(work["root"] / "sst2"), "--do_predict")
    lines = (tmp_path / "new" / "o" / "SST-2.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 8 + 1
    assert (tmp_path / "new" / "o" / "test_results_sst2.txt").is_file()


def test_non_positive_sample_limits_are_refused(work, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:  # was a ValueError traceback from the sampler
        run(work, tmp_path / "o", "--task_name", "sst2", "--data_dir", str(work["root"] / "sst2"), "--do_train",
            "--max_train_samples", "0")
    assert info.value.code == 2
    assert "--max_train_samples must be at least 1, got 0" in capsys.readouterr().err


def test_head_with_another_label_count(work, tmp_path):
    # Bug: a checkpoint fine-tuned with 3 labels used for a 2-label task ended in a RuntimeError traceback, and
    # there was no command-line way to re-initialise the head (4.4.2 later grew --ignore_mismatched_sizes).
    from transformers import AutoModelForSequenceClassification

    three = tmp_path / "three"
    torch.manual_seed(0)  # the 3-label head saved here is the start of the run below: the same one every time
    AutoModelForSequenceClassification.from_pretrained(work["root"] / "model", num_labels=3).save_pretrained(three)
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(work["root"] / "model" / name, three / name)
    _, info = AutoModelForSequenceClassification.from_pretrained(three, num_labels=2, ignore_mismatched_sizes=True,
                                                                 output_loading_info=True)
    head = ["classifier.out_proj.bias", "classifier.out_proj.weight"]
    assert sorted(info["mismatched_keys"]) == head and info["missing_keys"] == []  # reported once, not twice

    args = ["--model_name_or_path", str(three), "--task_name", "sst2", "--data_dir", str(work["root"] / "sst2"),
            "--do_train", "--do_eval"]
    message = error_of(work, tmp_path / "o", *args)
    assert message.startswith(f"run_glue.py: error: {three}: tensor classifier.out_proj.")
    assert message.endswith("fix the config, or pass --ignore_mismatched_sizes to re-initialise them")
    # the re-initialised 2-label head trains: on a learnable task whose dev set is its train set, a run that
    # learns fits all 48 examples (chance is 0.5 and loss 0.69; measured: accuracy 1.0, loss 0.003)
    fit = tmp_path / "fit"
    fit.mkdir()
    for name in ("train.tsv", "dev.tsv"):
        shutil.copy(work["root"] / "sst2" / "train.tsv", fit / name)
    args[args.index("--data_dir") + 1] = str(fit)
    result = run(work, tmp_path / "o", *args, "--ignore_mismatched_sizes", "--learning_rate", "1e-2",
                 "--num_train_epochs", "20")
    assert result["eval_samples"] == 48 and result["eval_accuracy"] == 1.0 and result["eval_loss"] < 0.05, result
    tuned = AutoModelForSequenceClassification.from_pretrained(tmp_path / "o")
    assert tuned.config.num_labels == 2 and tuned.classifier.out_proj.weight.shape == (2, 16)
