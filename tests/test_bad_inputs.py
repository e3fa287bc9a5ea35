"""Bad input through run_glue.py, one table: each case ends with a non-zero exit (2 from argparse, 1 from our checks)
and one line matching the case's expected text, which names the problem and, in most cases, the fix; output_dir is
not created where there was none, and the scratch folder (inputs, an existing output_dir) is left byte for byte."""
import os
import re
import shutil
import time

import pytest

import test_run_glue as rg
from glue_utils import write_glue_task

work = rg.work  # the tiny RoBERTa and sst2-like data of the run_glue tests (module-scoped fixture)
LORA = rg.LORA
MODEL = []  # the tiny model's folder, for the cases that derive a model from it


def rewrite(path, edit):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(edit(lines)) + "\n")


def glue(tmp, task, edit=None, filename="train.tsv"):
    folder = write_glue_task(task, str(tmp), n=8)[0]
    if edit is not None:
        rewrite(os.path.join(folder, filename), edit)
    return ["--task_name", task, "--data_dir", folder]


def csv_files(tmp, train, dev="sentence,label\ngood movie,1\n"):
    (tmp / "train.csv").write_text(train)
    (tmp / "dev.csv").write_text(dev)
    return ["--train_file", str(tmp / "train.csv"), "--validation_file", str(tmp / "dev.csv")]


def sst2(tmp):
    return glue(tmp, "sst2")


def missing_test_split(tmp):
    folder = write_glue_task("rte", str(tmp), n=4)[0]
    os.remove(os.path.join(folder, "test.tsv"))
    return ["--task_name", "rte", "--data_dir", folder, "--do_predict"]


def config_only(tmp):
    from transformers import AutoConfig

    AutoConfig.from_pretrained(MODEL[0]).save_pretrained(tmp / "config_only")
    return tmp / "config_only"


def full_dir(tmp):
    (tmp / "full").mkdir()
    (tmp / "full" / "notes.txt").write_text("keep me")
    return tmp / "full"


def not_a_dir(tmp):
    (tmp / "file").write_text("x")
    return str(tmp / "file" / "out")


# name -> (arguments (a function of a scratch folder), expected message (regex)); --do_train unless given
CASES = {
    "missing data dir": (lambda t: ["--task_name", "rte", "--data_dir", str(t / "nowhere")],
                         r"--data_dir \S+nowhere is not a directory"),
    "missing split": (missing_test_split, r"test.tsv not found: the test split of rte is needed"),
    "malformed tsv row": (lambda t: glue(t, "rte", lambda lines: lines[:3] + ["7\tonly two fields"] + lines[3:]),
                          r"train.tsv.*expected 4 tab-separated fields"),
    "wrong column count": (lambda t: glue(t, "rte", lambda lines: ["index\tsentence1\tlabel"] + lines[1:]),
                           r"train.tsv: header \['index', 'sentence1', 'label'\] lacks column"),
    "label outside the label set": (lambda t: glue(t, "rte", lambda lines: lines[:2] + [
        "\t".join(lines[2].split("\t")[:-1] + ["maybe"])] + lines[3:]),
        r"label 'maybe' is not one of \['entailment', 'not_entailment'\]"),
    "empty training file": (lambda t: glue(t, "sst2", lambda lines: lines[:1]), r"train.tsv: no examples"),
    "non-numeric STS-B label": (lambda t: glue(t, "stsb", lambda lines: lines[:2] + [
        "\t".join(lines[2].split("\t")[:-1] + ["high"])] + lines[3:]), r"label 'high' is not a number"),
    "csv without a label column": (lambda t: csv_files(t, "sentence,score\ngood movie,1\n"),
                                   r"train.csv has no 'label' column"),
    "empty csv": (lambda t: csv_files(t, "sentence,label\n"), r"train.csv has no examples"),
    "csv label unseen in training": (lambda t: csv_files(t, "sentence,label\na,1\nb,0\n", "sentence,label\nc,2\n"),
                                     r"dev.csv has label\(s\) \['2'\] that the train file"),
    "unknown task": (lambda t: ["--task_name", "sst3"], r"unknown task 'sst3': pick one of"),
    "no task and no files": (lambda t: [], r"need either --task_name or both --train_file and --validation_file"),
    "apply_lora without lora_r": (lambda t: sst2(t) + ["--apply_lora", "--lora_alpha", "4"],
                                  r"apply_lora needs a positive integer lora_r, got None"),
    "lora_r 0": (lambda t: sst2(t) + ["--apply_lora", "--lora_r", "0", "--lora_alpha", "4"],
                 r"apply_lora needs a positive integer lora_r, got 0"),
    "lora_r negative": (lambda t: sst2(t) + ["--apply_lora", "--lora_r", "-2", "--lora_alpha", "4"],
                        r"apply_lora needs a positive integer lora_r, got -2"),
    "lora_path without apply_lora": (lambda t: sst2(t) + ["--lora_path", "x.bin"], r"--lora_path needs --apply_lora"),
    "nonexistent model path": (lambda t: sst2(t) + ["--model_name_or_path", str(t / "no_model")],
                               r"no_model is not a directory: pass an existing model folder"),
    "model folder without weights": (lambda t: sst2(t) + ["--model_name_or_path", str(config_only(t)),
                                                          "--tokenizer_name", MODEL[0]],
                                     r"has neither model.safetensors nor pytorch_model.bin"),
    "hub id while offline": (lambda t: sst2(t) + ["--model_name_or_path", "someone/not-cached-model"],
                             r"'someone/not-cached-model' is not a local directory and is not in the cache "
                             r"\(offline mode is on\)"),
    "output_dir not empty": (lambda t: sst2(t) + ["--output_dir", str(full_dir(t)), "--overwrite_output_dir", "false"],
                             r"exists and is not empty: pass --overwrite_output_dir"),
    "output_dir under a file": (lambda t: sst2(t) + ["--output_dir", not_a_dir(t)],
                                r"cannot write to --output_dir \S+/file/out .*: pick a writable folder"),
    "fp16 on CPU": (lambda t: sst2(t) + ["--fp16"], r"fp16 mixed precision needs a CUDA device: drop --fp16"),
    "save_total_limit 0": (lambda t: sst2(t) + ["--save_total_limit", "0"],
                           r"--save_total_limit must be at least 1"),
    "batch size 0": (lambda t: sst2(t) + ["--per_device_train_batch_size", "0"],
                     r"per_device_train_batch_size and per_device_eval_batch_size must be >= 1"),
    "negative learning rate": (lambda t: sst2(t) + ["--learning_rate", "-1"],
                               r"learning_rate must not be negative, got -1.0"),
    "warmup_ratio above 1": (lambda t: sst2(t) + ["--warmup_ratio", "2"], r"warmup_ratio must lie in \[0, 1\]"),
    "max_train_samples 0": (lambda t: sst2(t) + ["--max_train_samples", "0"],
                            r"--max_train_samples must be at least 1"),
    "unknown flag": (lambda t: sst2(t) + ["--lora_rank", "8"], r"unrecognized arguments: --lora_rank 8"),
    "bad strategy": (lambda t: sst2(t) + ["--evaluation_strategy", "sometimes"], r"invalid choice: 'sometimes'"),
    "metric not computed": (lambda t: sst2(t) + ["--evaluation_strategy", "epoch", "--save_strategy", "epoch",
                                                 "--do_eval", "--load_best_model_at_end",
                                                 "--metric_for_best_model", "f1"],
                            r"--metric_for_best_model f1 is not among the metrics of sst2 \(eval_accuracy, "
                            r"eval_loss\): pick one"),
    "nothing to do": (lambda t: sst2(t) + ["--do_train", "false"], r"nothing to do: pass --do_train"),
    "evaluation without do_eval": (lambda t: sst2(t) + ["--evaluation_strategy", "epoch"],
                                   r"--evaluation_strategy epoch needs --do_eval"),
}


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(work, tmp_path, capsys, offline, case):
    MODEL[:] = [work["model"]]
    make_args, expected = CASES[case]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    extra = make_args(scratch)
    out = tmp_path / "out"
    argv = ["--model_name_or_path", work["model"], "--output_dir", str(out), "--overwrite_output_dir",
            "--do_train", "--per_device_train_batch_size", "8", "--num_train_epochs", "1", "--seed", "0",
            "--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no", *extra]
    before = {p: p.read_bytes() for p in scratch.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit) as info:
        rg.run_glue.main(argv)
    code = info.value.code
    if isinstance(code, int):  # argparse: status 2, the message on stderr
        assert code == 2
        message = capsys.readouterr().err.strip().splitlines()[-1]
    else:  # our errors: status 1, the one line is the exit message
        message = code
        assert "\n" not in message and message.startswith("run_glue.py: error: ")
    assert re.search(expected, message), message
    assert not out.exists()  # nothing half-written
    assert {p: p.read_bytes() for p in scratch.rglob("*") if p.is_file()} == before  # inputs and old outputs kept


@pytest.mark.parametrize("what", ["model", "dataset"])
def test_hub_out_of_reach_fails_fast(work, tmp_path, monkeypatch, what):
    """No network and no HF_HUB_OFFLINE: one line with the fix at once, not half a minute of retries."""
    from huggingface_hub import constants

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: refused at once
    monkeypatch.setattr("datasets.config.HF_DATASETS_OFFLINE", False)
    data = [] if what == "dataset" else glue(tmp_path, "sst2")[2:]
    start = time.monotonic()
    message = rg.error_of(work, tmp_path / "out", "--task_name", "sst2", *data, "--do_eval",
                          *(["--model_name_or_path", "someone/not-cached-model"] if what == "model" else []))
    assert time.monotonic() - start < 10
    if what == "model":
        assert message.endswith("'someone/not-cached-model' is not a local directory and is not in the cache (the "
                                "hub, http://127.0.0.1:9, cannot be reached): pass a local folder holding config.json, "
                                "or download it once with network access (HF_HUB_OFFLINE=1 then reads only the cache)")
    else:
        assert message.endswith("cannot load nyu-mll/glue/sst2: the hub, http://127.0.0.1:9, cannot be reached; pass "
                                "--data_dir with the GLUE files of sst2, or set HF_DATASETS_OFFLINE=1 to read a copy "
                                "cached by an earlier download")
    assert not (tmp_path / "out").exists()


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(work, tmp_path):
    # a huge learning rate blows the LoRA weights up within a few steps; a checkpoint after every step
    out = tmp_path / "out"
    message = rg.error_of(work, out, *glue(tmp_path, "sst2"), "--do_train", *LORA, "--max_steps", "8", "--learning_rate", "1e30",
                          "--max_grad_norm", "0", "--save_strategy", "steps", "--save_steps", "1")
    found = re.fullmatch(r"run_glue.py: error: the training loss is nan or inf at step (\d+): training stopped, the "
                         r"last good checkpoint is (\S+); lower --learning_rate, or keep gradients clipped "
                         r"\(--max_grad_norm 1.0\)", message)
    assert found, message
    step = int(found.group(1))
    assert step >= 2 and found.group(2) == str(out / f"checkpoint-{step - 1}")
    assert sorted(os.listdir(out)) == [f"checkpoint-{s}" for s in sorted(range(1, step), key=str)]
    from safetensors.torch import load_file

    last = load_file(out / f"checkpoint-{step - 1}" / "model_trainable.safetensors")  # LoRA + head
    assert all(bool(v.isfinite().all()) for v in last.values())
