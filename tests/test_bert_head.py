"""BERT's head under the fork's rule (issue 23): `bert.pooler` (tanh(dense([CLS]))) is the first layer of the task
head, as RoBERTa's classifier.dense and DeBERTa's top-level pooler are, though it sits inside `bert.`.

With --apply_lora through run_glue.py on a tiny BERT, the pooler trains, is saved in the LoRA file and in
peft_adapter/, and --lora_path restores it; stock PEFT (the peer venv) loads the adapter with our logits. Every
check compares the trained pooler with the base's, so each one fails when the pooler is left frozen. Also: BitFit,
models without a pooler, LoRA files written before the change, parameter counts and the merged export.
"""
import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from transformers import AutoModelForSequenceClassification, BertConfig, BertModel, BertTokenizerFast
from transformers import lora_interop as li
from transformers.lora import count_parameters, fork_trainable_rule, lora_state_dict
from transformers.method_loading import load_lora_state_dict
from transformers.parameter_groups import Backbone, backbone_of, in_backbone, is_head

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "text-classification"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from needs import need_peer  # noqa: E402

POOLER = ("bert.pooler.dense.weight", "bert.pooler.dense.bias")
LORA = ["--apply_lora", "--lora_r", "2", "--lora_alpha", "4"]
SHAPE = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
             max_position_embeddings=64)
TOL = 1e-5  # relative logit difference against stock PEFT, as in test_peft_interop.py


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A pretrained-style base: a bare BertModel with its pooler, and a WordPiece tokenizer."""
    folder = tmp_path_factory.mktemp("bert_base")
    tokenizer = BertTokenizerFast(str(ROOT / "tests" / "fixtures" / "bert" / "tok" / "vocab.txt"))
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer), **SHAPE)).save_pretrained(str(folder))
    return folder


def base_pooler(base):
    weights = load_file(base / "model.safetensors")
    return {"bert." + k: weights[k] for k in ("pooler.dense.weight", "pooler.dense.bias")}


@pytest.fixture(scope="module")
def run(base, tmp_path_factory):
    """One LoRA run of run_glue.py (SST-2 layout, 1 epoch), then a --lora_path evaluation of what it saved."""
    root = tmp_path_factory.mktemp("bert_head_run")
    run_glue, make_tiny = _load("run_glue"), _load("make_tiny")
    make_tiny.write_sst2_like(str(root / "data"), 64, 16, 8)
    common = ["--task_name", "sst2", "--data_dir", str(root / "data"), "--model_name_or_path", str(base),
              "--max_seq_length", "32", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16",
              "--learning_rate", "1e-2", "--num_train_epochs", "1", "--seed", "0", "--report_to", "none",
              "--disable_tqdm", "true", "--save_strategy", "no", "--overwrite_output_dir", *LORA]
    trained = run_glue.main(common + ["--output_dir", str(root / "out"), "--do_train", "--do_eval"])
    restored = run_glue.main(common + ["--output_dir", str(root / "again"), "--do_eval",
                                       "--lora_path", str(root / "out" / "pytorch_model_lora.bin")])
    return {"out": root / "out", "trained": trained, "restored": restored}


def trained_pooler(run):
    model = load_file(run["out"] / "model.safetensors")
    return {k: model[k] for k in POOLER}


def test_the_pooler_trains_under_lora(run, base):
    trained, before = trained_pooler(run), base_pooler(base)
    assert all(not torch.equal(trained[k], before[k]) for k in POOLER)
    model = load_file(run["out"] / "model.safetensors")
    frozen = {k: v for k, v in load_file(base / "model.safetensors").items() if k.startswith("encoder.")}
    assert frozen and all(torch.equal(model["bert." + k], v) for k, v in frozen.items())  # the backbone did not move


def test_the_lora_file_and_the_peft_adapter_hold_the_trained_pooler(run, base):
    trained, before = trained_pooler(run), base_pooler(base)
    for sd in (torch.load(run["out"] / "pytorch_model_lora.bin", weights_only=True),
               load_file(run["out"] / "model_lora.safetensors")):
        assert all(k in sd and torch.equal(sd[k], trained[k]) for k in POOLER)
    adapter = run["out"] / li.ADAPTER_DIR
    cfg = json.loads((adapter / li.ADAPTER_CONFIG_NAME).read_text())
    assert set(cfg["modules_to_save"]) == {"pooler", "classifier"}  # PEFT matches 'pooler' to bert.pooler
    tensors = load_file(adapter / li.ADAPTER_WEIGHTS_NAME)
    for k in POOLER:
        assert torch.equal(tensors[li.to_peft_key(k)], trained[k]) and not torch.equal(trained[k], before[k])


def test_lora_path_restores_the_trained_pooler(run, base):
    trained, before = trained_pooler(run), base_pooler(base)
    model = AutoModelForSequenceClassification.from_pretrained(str(base), apply_lora=True, lora_r=2, lora_alpha=4)
    report = load_lora_state_dict(model, str(run["out"]))  # the save folder: its peft_adapter/
    state = model.state_dict()
    assert set(POOLER) <= set(report["loaded"])
    assert all(torch.equal(state[k], trained[k]) and not torch.equal(state[k], before[k]) for k in POOLER)
    # the run_glue.py evaluation from --lora_path gives the trained run's evaluation, loss to the last bit
    ours = {k: v for k, v in run["restored"].items() if k in ("eval_loss", "eval_accuracy")}
    assert ours == {k: run["trained"][k] for k in ours} and "eval_loss" in ours


def test_peft_loads_the_adapter_with_our_logits(run, base, tmp_path):
    peer = need_peer()
    trained, before = trained_pooler(run), base_pooler(base)
    assert all(not torch.equal(trained[k], before[k]) for k in POOLER)  # equal logits below then need the pooler
    model = AutoModelForSequenceClassification.from_pretrained(str(run["out"])).eval()
    batch = li.sample_batch(model.config, batch=3, length=12, seed=1)
    save_file(batch, tmp_path / "inputs.safetensors")
    jobs = [{"kind": "adapter", "base": str(base), "adapter": str(run["out"] / li.ADAPTER_DIR),
             "inputs": str(tmp_path / "inputs.safetensors"), "out": str(tmp_path / "peft.safetensors")}]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    done = subprocess.run([peer, str(ROOT / "tests" / "fixtures" / "peft_peer_logits.py"), str(tmp_path / "jobs.json")],
                          capture_output=True, text=True)
    error = tmp_path / "peft.safetensors.error"
    assert done.returncode == 0 and not error.exists(), (done.stderr[-2000:], error.exists() and error.read_text())
    theirs = load_file(tmp_path / "peft.safetensors")["logits"]
    with torch.no_grad():
        ours = model(**batch).logits
    assert ((ours - theirs).abs().max() / theirs.abs().max()).item() <= TOL


def test_merged_export_carries_the_trained_pooler(run, base, tmp_path):
    model = AutoModelForSequenceClassification.from_pretrained(str(run["out"]))
    result = li.export_merged(model, str(tmp_path / "merged"))
    merged = load_file(tmp_path / "merged" / "model.safetensors")
    trained, before = trained_pooler(run), base_pooler(base)
    assert all(torch.equal(merged[k], trained[k]) and not torch.equal(merged[k], before[k]) for k in POOLER)
    assert result["max_abs_logit_diff"] < 1e-5


# -- the rule itself, without a run ---------------------------------------------------------------------------------
def lora_bert(**kw):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=40, num_labels=2, apply_lora=True, lora_r=2, lora_alpha=4, **SHAPE, **kw)
    return AutoModelForSequenceClassification.from_config(config)


def test_the_rule_names_the_pooler_head_for_every_method():
    model = lora_bert()
    assert backbone_of(model) == Backbone("bert", ("pooler",))
    assert is_head("bert.pooler.dense.weight", backbone_of(model)) and is_head("classifier.bias", backbone_of(model))
    assert in_backbone("bert.encoder.layer.0.output.dense.weight", backbone_of(model))
    assert in_backbone("bert.pooler.dense.weight", "bert")  # a bare prefix knows no head module inside it
    assert not is_head("bert.poolerx.weight", backbone_of(model))  # a module boundary, not a string prefix

    fork_trainable_rule(model, apply_lora=True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if "lora_" in n} | set(POOLER) | {
        "classifier.weight", "classifier.bias"}
    counts = count_parameters(model)
    assert counts["head"] == (16 * 16 + 16) + (16 * 2 + 2) and counts["trainable"] == counts["lora"] + counts["head"]
    assert set(POOLER) <= set(lora_state_dict(model))

    fork_trainable_rule(model, apply_bitfit=True)  # BitFit: biases, and the whole head, the pooler's weight too
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"bert.pooler.dense.weight", "classifier.weight"} <= trainable
    assert all(n.endswith(".bias") for n in trainable - {"bert.pooler.dense.weight", "classifier.weight"})


def test_a_bert_without_a_pooler_still_works():
    config = BertConfig(vocab_size=40, apply_lora=True, lora_r=2, lora_alpha=4, **SHAPE)
    torch.manual_seed(0)
    bare = BertModel(config, add_pooling_layer=False)
    fork_trainable_rule(bare, apply_lora=True)  # a bare model's names carry no 'bert.' prefix: all are head
    assert bare.pooler is None and count_parameters(bare)["total"] > 0
    assert bare(torch.tensor([[2, 5, 7]])).last_hidden_state.shape == (1, 3, 16)
    assert not any(k.startswith("pooler.") for k in lora_state_dict(bare))


def test_a_lora_file_from_before_the_change_keeps_the_base_pooler(caplog):
    trained = lora_bert()
    with torch.no_grad():
        for name, p in trained.named_parameters():
            if "lora_B" in name or name in POOLER:
                p.add_(0.1)
    old = {k: v for k, v in lora_state_dict(trained).items() if k not in POOLER}  # as written when it was frozen
    model = lora_bert()
    before = {k: v.clone() for k, v in model.state_dict().items() if k in POOLER}
    with caplog.at_level(logging.WARNING, logger="transformers.method_loading"):
        report = load_lora_state_dict(model, old, source="old.bin")
    lines = [r.getMessage() for r in caplog.records if "bert.pooler" in r.getMessage()]
    assert len(lines) == 1 and "old.bin" in lines[0] and "kept" in lines[0], lines
    assert all(torch.equal(model.state_dict()[k], before[k]) for k in POOLER)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in old.items()) and report["reinitialised_head"] == []

    caplog.clear()  # a file with the pooler loads it, silently
    load_lora_state_dict(model, lora_state_dict(trained), source="new.bin")
    assert not any("bert.pooler" in r.getMessage() for r in caplog.records)
    assert all(torch.equal(model.state_dict()[k], trained.state_dict()[k]) for k in POOLER)
