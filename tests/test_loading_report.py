"""The "start from random values" report of from_pretrained names only tensors that really keep their initial values:
a run_glue re-evaluation from --lora_path does not report the head that the LoRA file supplies a moment later, while
a head that stays random (no --lora_path, or a file head of another label count, re-initialised) is still reported."""
import logging
import os
import sys

import pytest
import torch

from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaModel

sys.path.insert(0, os.path.dirname(__file__))
from glue_utils import write_glue_task  # noqa: E402
from test_run_glue import LORA, run, work  # noqa: E402,F401  (module fixtures reused here)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

RANDOM = "start from random values"
TINY = dict(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
            max_position_embeddings=32, type_vocab_size=1)


def random_value_warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and RANDOM in r.getMessage()]


def test_deferred_report_leaves_out_what_a_later_file_supplies(tmp_path, caplog):
    RobertaModel(RobertaConfig(**TINY)).save_pretrained(tmp_path / "bare")
    head = ["classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight",
            "classifier.out_proj.bias"]
    with pytest.raises(ValueError, match="needs output_loading_info=True"):
        RobertaForSequenceClassification.from_pretrained(tmp_path / "bare", defer_loading_report=True)

    caplog.set_level(logging.INFO, logger="transformers")
    model, info = RobertaForSequenceClassification.from_pretrained(tmp_path / "bare", output_loading_info=True,
                                                                   defer_loading_report=True)
    assert info["missing_keys"] == head and not random_value_warnings(caplog)  # nothing logged yet
    report = info["loading_report"]
    report.supplied_by("head.bin", head[:2])
    report.emit()
    [warning] = random_value_warnings(caplog)
    assert "2 tensor(s)" in warning and "out_proj" in warning and "classifier.dense" not in warning
    assert f"2 tensor(s) absent from {tmp_path / 'bare'} are taken from head.bin" in caplog.text
    assert info["missing_keys"] == head  # the loading info itself still says what the checkpoint lacked

    caplog.clear()
    report.supplied_by("rest.bin", head[2:])
    report.emit()
    assert not random_value_warnings(caplog)
    assert "are taken from rest.bin" in caplog.text

    caplog.clear()  # without deferring, the report comes at once, as before
    _, info = RobertaForSequenceClassification.from_pretrained(tmp_path / "bare", output_loading_info=True)
    assert "loading_report" not in info
    [warning] = random_value_warnings(caplog)
    assert all(k in warning for k in head)


@pytest.fixture(scope="module")
def sst2_lora(work):
    """A LoRA run on an SST-2 look-alike: its data folder and its pytorch_model_lora.bin (LoRA tensors + head)."""
    data = write_glue_task("sst2", str(work["root"] / "glue"), n=16, seed=1)[0]
    out = work["root"] / "sst2_lora"
    run(work, out, "--task_name", "sst2", "--data_dir", data, "--do_train", *LORA)
    return data, out / "pytorch_model_lora.bin"


def test_reevaluating_from_lora_path_does_not_call_the_supplied_head_random(work, sst2_lora, tmp_path, caplog):
    data, lora_file = sst2_lora
    head = sorted(k for k in torch.load(lora_file) if k.startswith("classifier."))
    assert len(head) == 4
    caplog.set_level(logging.INFO, logger="transformers")
    run(work, tmp_path / "again", "--task_name", "sst2", "--data_dir", data, "--do_eval", *LORA,
        "--lora_path", str(lora_file))
    assert not random_value_warnings(caplog), random_value_warnings(caplog)
    assert f"tensor(s) absent from {work['model']} are taken from {lora_file}" in caplog.text
    assert "LoRA/adapter tensors start from their initialisation" not in caplog.text  # the file has them too

    caplog.clear()  # the same run without the file: its head is random, and said so
    run(work, tmp_path / "cold", "--task_name", "sst2", "--data_dir", data, "--do_eval", *LORA)
    [warning] = random_value_warnings(caplog)
    assert all(k in warning for k in head)


def test_a_head_the_lora_file_cannot_fill_is_still_reported(work, sst2_lora, tmp_path, caplog):
    _, lora_file = sst2_lora  # a two-label head; STS-B's has one output, so load_lora_state_dict re-initialises it
    data = write_glue_task("stsb", str(tmp_path / "glue"), n=8)[0]
    run(work, tmp_path / "stsb", "--task_name", "stsb", "--data_dir", data, "--do_eval", *LORA,
        "--lora_path", str(lora_file))
    assert "head is re-initialised" in caplog.text
    [warning] = random_value_warnings(caplog)
    assert "4 tensor(s)" in warning and "classifier.out_proj.weight" in warning
