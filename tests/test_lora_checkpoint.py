"""The LoRA paper's released RoBERTa-base MNLI checkpoint (52 tensors) loads into our roberta-base-shaped model.

Needs ../shared/data/checkpoints/roberta_base_lora_mnli.bin (skipped when absent). The frozen backbone is randomly
initialised (no roberta-base weights needed): this checks names, shapes and that every tensor is used.
Hyper-parameters from microsoft/LoRA examples/NLU/roberta_base_mnli.sh: --apply_lora --lora_r 8 --lora_alpha 16.
"""
from pathlib import Path

import pytest
import torch

from transformers import RobertaConfig, RobertaForSequenceClassification
from transformers.method_loading import load_lora_state_dict

CKPT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "checkpoints" / "roberta_base_lora_mnli.bin"
ROBERTA_BASE = dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                    pad_token_id=1, num_labels=3, apply_lora=True, lora_r=8, lora_alpha=16)


@pytest.fixture(scope="module")
def checkpoint():
    if not CKPT.exists():
        pytest.skip(f"{CKPT} is absent")
    sd = torch.load(CKPT, map_location="cpu", weights_only=True)
    assert len(sd) == 52
    return sd


def build(config, state, copy=True):
    """A model holding (copies of) `state`, built on the meta device: no 125M-value random init per test."""
    with torch.device("meta"):
        model = RobertaForSequenceClassification(RobertaConfig(**config))
    model.load_state_dict({k: v.clone() if copy else v for k, v in state.items()}, strict=True, assign=True)
    return model.eval()


@pytest.fixture(scope="module")
def pristine():
    torch.manual_seed(0)
    return RobertaForSequenceClassification(RobertaConfig(**ROBERTA_BASE)).state_dict()


@pytest.fixture
def model(pristine):
    """A fresh model for each test: no test sees what another one loaded, whatever the order."""
    return build(ROBERTA_BASE, pristine)


def inputs():
    ids = torch.tensor([[0, 713, 16, 10, 1296, 4, 2, 2, 713, 16, 41, 1296, 4, 2]])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def test_every_tensor_matches_a_model_tensor(checkpoint, model):
    own = model.state_dict()
    for k, v in checkpoint.items():
        assert k in own, f"{k} is not a model tensor"
        assert own[k].shape == v.shape, (k, tuple(own[k].shape), tuple(v.shape))
    assert {k for k in own if "lora_" in k} == {k for k in checkpoint if "lora_" in k}  # 48 LoRA tensors
    assert sum("lora_" in k for k in checkpoint) == 48


def test_load_strict_with_lora_loader(checkpoint, model):
    assert all(not torch.equal(model.state_dict()[k], v) for k, v in checkpoint.items() if "lora_A" in k)
    with torch.no_grad():
        before = model(**inputs()).logits
    # The weights LoRA sits on, and the LayerNorms, must stay untouched (a cheap subset of the 125M frozen values).
    frozen = {k: v.clone() for k, v in model.state_dict().items()
              if k.endswith(("query.weight", "value.weight", "LayerNorm.weight"))}
    report = load_lora_state_dict(model, str(CKPT))
    assert sorted(report["loaded"]) == sorted(checkpoint) and report["reinitialised_head"] == []
    own = model.state_dict()
    for k, v in checkpoint.items():
        assert torch.equal(own[k], v), f"{k} was not loaded"
    for k, v in frozen.items():
        assert torch.equal(own[k], v), f"{k} is not in the checkpoint but changed"
    with torch.no_grad():  # loaded in eval mode: the LoRA update and the trained head take effect
        after = model(**inputs()).logits
    assert after.shape == (1, 3) and not torch.allclose(after, before)


def test_loaded_model_computes_the_merged_weights(checkpoint, model):
    """After our loader (model already in eval mode, where the fork's loralib would have merged too early), the
    logits are those of a plain RoBERTa whose query/value weights are W + (alpha/r) B A, merged here by hand."""
    load_lora_state_dict(model, checkpoint)
    with torch.no_grad():
        logits = model(**inputs()).logits
    base = {k: v for k, v in model.state_dict().items() if "lora_" not in k}
    merged = dict(base)
    for k in checkpoint:
        if k.endswith("lora_A"):
            weight = k[: -len("lora_A")] + "weight"
            merged[weight] = base[weight] + (16 / 8) * checkpoint[k[:-1] + "B"] @ checkpoint[k]
    with torch.no_grad():
        expected = build({**ROBERTA_BASE, "apply_lora": False}, merged, copy=False)(**inputs()).logits
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # without the deltas the logits are far off: the comparison above can fail
        for name, tensor in model.named_parameters():
            if "lora_B" in name:
                tensor.zero_()
        assert (model(**inputs()).logits - expected).abs().max() > 100 * 1e-5


def test_wrong_rank_is_rejected(checkpoint):
    with torch.device("meta"):  # the loader checks shapes before it copies anything
        model = RobertaForSequenceClassification(RobertaConfig(**{**ROBERTA_BASE, "lora_r": 4,
                                                                  "num_hidden_layers": 1}))
    first_layer = {k: v for k, v in checkpoint.items() if ".layer." not in k or ".layer.0." in k}
    with pytest.raises(ValueError, match="lora_r"):
        load_lora_state_dict(model, first_layer)
