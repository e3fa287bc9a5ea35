"""LoRA on RoBERTa: which parameters train, how many there are, and that frozen weights never move.

Properties, not oracle numbers, except the parameter counts: 294,912 LoRA parameters for roberta-base with r=8 on
query and value (the LoRA paper's Table 2 lists 0.3M) and 124,647,939 parameters for the base classifier with 3
labels (counted with the latest HF RobertaForSequenceClassification).
"""

import loralib
import pytest
import torch

from transformers import RobertaConfig, RobertaForSequenceClassification, lora
from transformers.method_loading import load_lora_state_dict

TINY = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
            max_position_embeddings=40, type_vocab_size=1, layer_norm_eps=1e-5, num_labels=3,
            hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
ROBERTA_BASE = dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                    pad_token_id=1, num_labels=3)


def tiny(apply_lora=True, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = RobertaConfig(**{**TINY, **kw}, **(dict(apply_lora=True, lora_r=4, lora_alpha=8) if apply_lora else {}))
    return RobertaForSequenceClassification(cfg).eval()


def batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, TINY["vocab_size"], (3, 10), generator=g)
    ids[:, 0], ids[:, -1] = 0, 2
    mask = torch.ones_like(ids)
    ids[2, 6:], mask[2, 6:] = 1, 0
    return {"input_ids": ids, "attention_mask": mask}


def randomise_lora_(model, seed=5):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


def frozen_state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" not in k}


def assert_bitwise(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def logits(model):
    with torch.no_grad():
        return model(**batch()).logits


def test_lora_layers_sit_on_query_and_value_only():
    model = tiny()
    names = sorted(n for n, m in model.named_modules() if isinstance(m, loralib.Linear))
    want = [f"roberta.encoder.layer.{i}.attention.self.{w}" for i in range(2) for w in ("query", "value")]
    assert names == sorted(want)
    layer = model.roberta.encoder.layer[0].attention.self.query
    assert layer.r == 4 and layer.scaling == 8 / 4
    assert layer.lora_A.shape == (4, 32) and layer.lora_B.shape == (32, 4)
    assert torch.count_nonzero(layer.lora_B) == 0, "lora_B starts at zero"
    assert not any(isinstance(m, loralib.Linear) for m in tiny(apply_lora=False).modules())


def test_trainable_parameters_are_exactly_lora_and_head():
    model = tiny()
    lora.mark_only_lora_as_trainable(model, extra=())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(("lora_A", "lora_B")) for n in trainable)
    assert len(trainable) == 2 * 2 * 2  # layers x (query, value) x (A, B)
    lora.mark_only_lora_as_trainable(model)  # default: + classifier
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    head = {n for n, _ in model.named_parameters() if n.startswith("classifier.")}
    assert head and trainable == head | {n for n in trainable if "lora_" in n}
    assert len(trainable) == 8 + len(head)
    # The fork's rule gives the same set.
    model2 = tiny()
    lora.fork_trainable_rule(model2, apply_lora=True)
    assert {n for n, p in model2.named_parameters() if p.requires_grad} == trainable
    counts = lora.count_parameters(model)
    assert counts["lora"] == 2 * 2 * (4 * 32 + 32 * 4)
    assert counts["trainable"] == counts["lora"] + counts["head"]
    assert counts["total"] == sum(p.numel() for p in model.parameters())


def test_roberta_base_lora_parameter_count():
    cfg = RobertaConfig(**ROBERTA_BASE, apply_lora=True, lora_r=8, lora_alpha=16)
    try:
        with torch.device("meta"):  # shapes only: no 125M-parameter allocation
            model = RobertaForSequenceClassification(cfg)
    except (NotImplementedError, RuntimeError):
        model = RobertaForSequenceClassification(cfg)
    counts = lora.count_parameters(model)
    assert counts["lora"] == 294_912  # 12 layers x 2 matrices x (8x768 + 768x8)
    assert counts["total"] == 124_647_939 + 294_912
    assert counts["head"] == 768 * 768 + 768 + 768 * 3 + 3
    lora.mark_only_lora_as_trainable(model)
    assert lora.count_parameters(model)["trainable"] == 294_912 + counts["head"]


def test_zero_lora_b_gives_base_model_logits():
    base = tiny(apply_lora=False, seed=3)
    model = tiny(apply_lora=True, seed=4)
    result = model.load_state_dict(base.state_dict(), strict=False)
    assert all("lora_" in k for k in result.missing_keys) and not result.unexpected_keys
    assert all(torch.count_nonzero(p) == 0 for n, p in model.named_parameters() if n.endswith("lora_B"))
    # B = 0 makes the LoRA branch add exact zeros, so the logits are bit-identical.
    assert torch.equal(logits(model), logits(base))
    randomise_lora_(model)
    assert not torch.allclose(logits(model), logits(base))


def test_frozen_weights_survive_mode_toggles():
    model = tiny()
    randomise_lora_(model)
    before, out = frozen_state(model), logits(model)
    for _ in range(1000):
        model.eval()
        model.train()
    model.eval()
    assert_bitwise(frozen_state(model), before)
    assert torch.equal(logits(model), out)


def test_frozen_weights_survive_save_and_load(tmp_path):
    model = tiny()
    randomise_lora_(model)
    model.save_pretrained(tmp_path)
    again = RobertaForSequenceClassification.from_pretrained(tmp_path)
    assert again.config.apply_lora and again.config.lora_r == 4 and again.config.lora_alpha == 8
    assert_bitwise(frozen_state(again), frozen_state(model))
    assert_bitwise({k: v for k, v in again.state_dict().items()}, model.state_dict())
    assert torch.equal(logits(again), logits(model))


def test_lora_state_dict_loaded_in_eval_mode_changes_logits(tmp_path):
    trained = tiny()
    randomise_lora_(trained)
    sd = lora.lora_state_dict(trained)
    assert {k for k in sd if "lora_" in k} == {k for k in trained.state_dict() if "lora_" in k}
    assert all(k.startswith("classifier.") for k in sd if "lora_" not in k)
    torch.save(sd, tmp_path / "lora.bin")

    fresh = tiny()  # same seed: same frozen weights, lora_B = 0
    fresh.eval()
    frozen, out = frozen_state(fresh), logits(fresh)
    load_lora_state_dict(fresh, str(tmp_path / "lora.bin"))
    assert_bitwise(frozen_state(fresh), frozen)  # only LoRA/head tensors were written
    assert not torch.allclose(logits(fresh), out), "a LoRA state dict loaded in eval mode must take effect"
    assert torch.equal(logits(fresh), logits(trained))


def test_load_lora_state_dict_rejects_mismatch():
    model = tiny()
    sd = lora.lora_state_dict(model)
    key = next(k for k in sd if k.endswith("lora_A"))
    with pytest.raises(ValueError):
        load_lora_state_dict(model, {**sd, key: torch.zeros(2, 32)})  # trained with another lora_r
    with pytest.raises(ValueError):
        load_lora_state_dict(model, {**sd, "roberta.encoder.layer.9.attention.self.query.lora_A": sd[key]})
    with pytest.raises(ValueError):
        load_lora_state_dict(model, {k: v for k, v in sd.items() if k != key})  # incomplete
    with pytest.raises(ValueError):
        load_lora_state_dict(tiny(apply_lora=False), sd)  # LoRA tensors, model without LoRA


def test_merge_unmerge():
    model = tiny()
    randomise_lora_(model)
    frozen, out = frozen_state(model), logits(model)
    lora.merge_lora(model)
    merged = logits(model)
    changed = [k for k, v in frozen_state(model).items() if not torch.equal(v, frozen[k])]
    assert sorted(changed) == sorted(f"roberta.encoder.layer.{i}.attention.self.{w}.weight"
                                     for i in range(2) for w in ("query", "value"))
    # x(W + sBA)^T vs xW^T + s(xA^T)B^T: the same sum in another order, so float32 rounding only:
    # relative error a few eps (1.2e-7) times the depth; 1e-5 leaves ample margin, a missing scaling gives ~1e-1.
    err = ((merged - out).abs().max() / out.abs().max()).item()
    assert err <= 1e-5, err
    model.train()
    model.eval()
    assert torch.equal(logits(model), merged), "mode toggles must not merge or unmerge implicitly"
    lora.unmerge_lora(model)
    assert_bitwise(frozen_state(model), frozen)
    assert torch.equal(logits(model), out)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(5, 16), (3, 7, 16)])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_lean_lora_linear_equals_loralib(dtype, shape, dropout):
    """lora.LoRALinear (scaling on the r-wide product, B's product accumulated in place) against loralib.Linear with
    the same tensors and seed: same construction draws, output and gradients equal to rounding (float64 1e-12,
    float32 1e-5: a different order of the same products); state dict keys and types unchanged."""
    torch.manual_seed(0)
    ref = loralib.Linear(16, 12, r=4, lora_alpha=8, lora_dropout=dropout, merge_weights=False).to(dtype)
    torch.manual_seed(0)
    ours = lora.LoRALinear(16, 12, r=4, lora_alpha=8, lora_dropout=dropout, merge_weights=False).to(dtype)
    assert isinstance(ours, loralib.Linear) and list(ours.state_dict()) == list(ref.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), ref.state_dict().values()))
    with torch.no_grad():
        for m in (ref, ours):
            m.lora_B.copy_(torch.randn(12, 4, generator=torch.Generator().manual_seed(1), dtype=dtype))
    x0 = torch.randn(*shape, generator=torch.Generator().manual_seed(2), dtype=dtype)
    results = []
    for m in (ref, ours):
        x = x0.clone().requires_grad_()
        torch.manual_seed(3)
        out = m(x)
        (out * out).sum().backward()
        results.append((out.detach(), x.grad, m.lora_A.grad, m.lora_B.grad, torch.rand(2)))
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for a, b in zip(results[0][:4], results[1][:4]):
        assert torch.allclose(a, b, rtol=tol, atol=tol)
    assert torch.equal(results[0][4], results[1][4])  # LoRA dropout drew the same numbers


def test_lean_lora_linear_under_bf16_autocast_and_merged():
    torch.manual_seed(0)
    m = lora.LoRALinear(16, 12, r=4, lora_alpha=8, merge_weights=False)
    with torch.no_grad():
        m.lora_B.normal_()
    x = torch.randn(6, 16)
    with torch.no_grad():
        plain = m(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = m(x)
        assert low.dtype == torch.bfloat16 and torch.allclose(low.float(), plain, rtol=0.05, atol=0.05)
        m.weight += (m.lora_B @ m.lora_A) * m.scaling
        m.merged = True
        assert torch.allclose(m(x), plain, atol=1e-5)
