"""RoBERTa parity with the reference implementations on tiny random checkpoints.

Fixtures come from tests/fixtures/make_roberta_fixtures.py: checkpoints, inputs and expected outputs written by the
latest HF Transformers and by transformers 4.4.2, in eval mode, float32.

Tolerance: relative error = max|ours - ref| / max|ref| over a whole tensor, must be <= 1e-5. Normalising by the
largest magnitude (not element-wise) keeps near-zero entries from dominating. The two reference implementations
agree with each other to <= 4e-7 on these fixtures (recorded in meta.json by the generator); float32 has
eps = 1.2e-7, and a different but correct order of operations (fused attention, other matmul blocking) stays within a
few eps. Real bugs are far above 1e-5: a wrong LayerNorm eps on tiny_b gives 9e-5, GELU instead of gelu_new on
tiny_c 7e-5, a wrong mask/position id/scale gives >1e-2.
"""
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transformers import (AutoConfig, AutoModel, AutoModelForSequenceClassification, RobertaConfig,
                          RobertaForSequenceClassification, RobertaModel)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "roberta"
HEAD_CONFIGS = ["tiny_a", "tiny_b", "tiny_c", "tiny_c_legacy", "t442_a"]
RTOL = 1e-5


def rel_err(ours, ref):
    return ((ours.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


def load_case(name):
    """(checkpoint dir, inputs, expected outputs, meta) of one fixture."""
    d = FIXTURES / name
    meta = json.loads((d / "meta.json").read_text())
    ref = FIXTURES / meta["expected_from"]
    if (ref / "inputs.safetensors").exists():
        inputs, expected = load_file(ref / "inputs.safetensors"), load_file(ref / "expected.safetensors")
    else:  # written by 4.4.2 with torch.save: plain tensor dicts
        inputs = torch.load(ref / "inputs.pt", weights_only=True)
        expected = torch.load(ref / "expected.pt", weights_only=True)
    return d, inputs, expected, meta


def model_inputs(inputs):
    return {k: v for k, v in inputs.items() if k != "labels"}


def hidden_states_of(expected):
    n = len([k for k in expected if k.startswith("hidden_states.")])
    return [expected[f"hidden_states.{i}"] for i in range(n)]


def assert_close(ours, ref, what, mask=None):
    assert ours.shape == ref.shape, f"{what}: shape {tuple(ours.shape)} vs reference {tuple(ref.shape)}"
    err = rel_err(ours, ref)
    assert err <= RTOL, f"{what}: relative error {err:.2e} > {RTOL}"
    if mask is not None:  # real tokens alone (what a classifier or pooler may read)
        keep = mask.bool()
        err = rel_err(ours[keep], ref[keep])
        assert err <= RTOL, f"{what} at non-padded positions: relative error {err:.2e} > {RTOL}"


def test_fixtures_exist_and_are_small():
    total = sum(f.stat().st_size for f in FIXTURES.rglob("*") if f.is_file())
    assert total < 3_000_000, total
    for name in HEAD_CONFIGS + ["bare"]:
        assert (FIXTURES / name / "meta.json").exists(), name


@pytest.mark.parametrize("name", HEAD_CONFIGS)
def test_sequence_classification_matches_reference(name):
    d, inputs, expected, _ = load_case(name)
    model = RobertaForSequenceClassification.from_pretrained(d)
    assert not model.training, "from_pretrained must return the model in eval mode"
    with torch.no_grad():
        out = model(**model_inputs(inputs), labels=inputs["labels"], output_hidden_states=True)
    mask = inputs["attention_mask"]
    assert_close(out.logits, expected["logits"], f"{name} logits")
    assert_close(out.loss.reshape(1), expected["loss"], f"{name} loss")
    assert out[0] is out.loss, "index 0 must be the loss when labels are given"
    refs = hidden_states_of(expected)
    assert len(out.hidden_states) == len(refs), "hidden_states: embeddings + one per layer"
    for i, (h, r) in enumerate(zip(out.hidden_states, refs)):
        assert_close(h, r, f"{name} hidden_states[{i}]", mask)


@pytest.mark.parametrize("name", HEAD_CONFIGS)
def test_base_model_and_auto_classes_match_reference(name):
    d, inputs, expected, _ = load_case(name)
    base = RobertaModel.from_pretrained(d)  # head checkpoint into the bare model: 'roberta.' prefix stripped
    with torch.no_grad():
        out = base(**model_inputs(inputs), output_hidden_states=True)
    assert_close(out.last_hidden_state, expected["last_hidden_state"], f"{name} last_hidden_state",
                 inputs["attention_mask"])
    assert out[0] is out.last_hidden_state
    for i, (h, r) in enumerate(zip(out.hidden_states, hidden_states_of(expected))):
        assert_close(h, r, f"{name} RobertaModel hidden_states[{i}]", inputs["attention_mask"])

    auto = AutoModelForSequenceClassification.from_pretrained(d)
    assert type(auto) is RobertaForSequenceClassification
    assert isinstance(AutoConfig.from_pretrained(d), RobertaConfig)
    assert type(AutoModel.from_pretrained(d)) is RobertaModel
    with torch.no_grad():
        assert_close(auto(**model_inputs(inputs)).logits, expected["logits"], f"{name} Auto logits")


def test_config_fields_are_read():
    for name in ("tiny_a", "tiny_b", "tiny_c", "t442_a"):
        ref = json.loads((FIXTURES / name / "config.json").read_text())
        config = RobertaConfig.from_pretrained(FIXTURES / name)
        for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                    "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "hidden_act", "pad_token_id"):
            assert getattr(config, key) == ref[key], (name, key)
        assert config.num_labels == len(ref.get("id2label", [0, 1])), name  # latest HF omits the default 2


def test_legacy_gamma_beta_checkpoint_loads_completely():
    d, _, _, _ = load_case("tiny_c_legacy")
    assert any(k.endswith(".gamma") for k in torch.load(d / "pytorch_model.bin", weights_only=True))
    _, info = RobertaForSequenceClassification.from_pretrained(d, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info


def strip_prefix(keys):
    return sorted(k[len("roberta."):] if k.startswith("roberta.") else k for k in keys)


@pytest.mark.parametrize("name", HEAD_CONFIGS)
def test_loading_info_of_complete_checkpoints(name):
    d, _, _, meta = load_case(name)
    _, info = RobertaForSequenceClassification.from_pretrained(d, output_loading_info=True)
    ref = meta["t442_loading_info_seqcls"]  # what 4.4.2 reports for the same files: nothing
    assert strip_prefix(info["missing_keys"]) == strip_prefix(ref["missing_keys"]) == []
    assert strip_prefix(info["unexpected_keys"]) == strip_prefix(ref["unexpected_keys"]) == []


def test_bare_model_into_head_model_reports_like_t442():
    d, inputs, expected, meta = load_case("bare")
    model, info = RobertaForSequenceClassification.from_pretrained(d, num_labels=3, output_loading_info=True)
    # 4.4.2 and latest HF agree: head newly initialised (missing), bare model's pooler unused (unexpected).
    for oracle in ("t442_loading_info_seqcls", "hf_loading_info_seqcls"):
        ref = meta[oracle]
        assert strip_prefix(info["missing_keys"]) == strip_prefix(ref["missing_keys"]), oracle
        assert strip_prefix(info["unexpected_keys"]) == strip_prefix(ref["unexpected_keys"]), oracle
    assert model.classifier.out_proj.out_features == 3
    with torch.no_grad():  # the backbone was loaded under the added 'roberta.' prefix
        out = model(**model_inputs(inputs), output_hidden_states=True)
    assert_close(out.hidden_states[-1], expected["last_hidden_state"], "bare->head last_hidden_state",
                 inputs["attention_mask"])
    assert out.logits.shape == (inputs["input_ids"].shape[0], 3)

    base = RobertaModel.from_pretrained(d)
    with torch.no_grad():
        out = base(**model_inputs(inputs), output_hidden_states=True)
    assert_close(out.last_hidden_state, expected["last_hidden_state"], "bare last_hidden_state")
    assert_close(out.pooler_output, expected["pooler_output"], "bare pooler_output")
    for i, (h, r) in enumerate(zip(out.hidden_states, hidden_states_of(expected))):
        assert_close(h, r, f"bare hidden_states[{i}]")


def test_head_checkpoint_into_base_model_reports_missing_pooler():
    d, _, _, meta = load_case("tiny_a")
    _, info = RobertaModel.from_pretrained(d, output_loading_info=True)
    # Both oracles report the pooler as missing; the unused classifier is reported as unexpected by latest HF and
    # silently dropped by 4.4.2, so either answer is accepted for it.
    assert strip_prefix(info["missing_keys"]) == strip_prefix(meta["t442_loading_info_base"]["missing_keys"])
    assert strip_prefix(info["missing_keys"]) == strip_prefix(meta["hf_loading_info_base"]["missing_keys"])
    assert strip_prefix(info["unexpected_keys"]) in (
        strip_prefix(meta["t442_loading_info_base"]["unexpected_keys"]),
        strip_prefix(meta["hf_loading_info_base"]["unexpected_keys"]))


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("safe", [True, False])
def test_save_pretrained_round_trip_is_bitwise(tmp_path, safe):
    d, inputs, _, _ = load_case("tiny_b")
    model = RobertaForSequenceClassification.from_pretrained(d)
    model.save_pretrained(tmp_path, safe_serialization=safe)
    weights = "model.safetensors" if safe else "pytorch_model.bin"
    assert (tmp_path / weights).exists() and (tmp_path / "config.json").exists()
    if not safe:
        assert all(isinstance(v, torch.Tensor)
                   for v in torch.load(tmp_path / weights, weights_only=True).values())
    again, info = RobertaForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert_same_state(model, again)
    assert again.config.to_dict()["layer_norm_eps"] == model.config.layer_norm_eps
    with torch.no_grad():
        assert torch.equal(model(**model_inputs(inputs)).logits, again(**model_inputs(inputs)).logits)


def test_round_trip_from_legacy_and_t442_files(tmp_path):
    for name in ("tiny_c_legacy", "t442_a"):
        d, _, _, _ = load_case(name)
        model = RobertaForSequenceClassification.from_pretrained(d)
        out = tmp_path / name
        model.save_pretrained(out)
        assert_same_state(model, RobertaForSequenceClassification.from_pretrained(out))
        # A checkpoint copied without its config cannot be loaded silently with defaults.
        shutil.copytree(d, tmp_path / f"{name}_noconfig")
        (tmp_path / f"{name}_noconfig" / "config.json").unlink()
        with pytest.raises((OSError, ValueError)):
            RobertaForSequenceClassification.from_pretrained(tmp_path / f"{name}_noconfig")


def test_train_mode_dropout_and_eval_determinism():
    d, inputs, expected, _ = load_case("tiny_a")
    model = RobertaForSequenceClassification.from_pretrained(d)
    with torch.no_grad():
        first = model(**model_inputs(inputs)).logits
        assert torch.equal(first, model(**model_inputs(inputs)).logits)
        model.train()
        torch.manual_seed(0)
        noisy = model(**model_inputs(inputs)).logits
    assert rel_err(noisy, expected["logits"]) > RTOL, "dropout (p=0.1) must be active in train mode"
