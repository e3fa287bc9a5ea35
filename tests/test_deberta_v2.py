"""DeBERTa-V2/V3: parity with transformers (latest and 4.4.2), the fast attention against a direct transcription of
the disentangled-attention formulas, the fork's LoRA details, R-Drop/Cutoff losses and an end-to-end run_glue.py.

Fixtures: tests/fixtures/make_deberta_fixtures.py (tiny random models saved by latest transformers' save_pretrained,
expected outputs from latest transformers and from 4.4.2).
"""
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from transformers import AutoModelForSequenceClassification, lora
from transformers.models.deberta_v2 import DebertaV2Config, DebertaV2ForSequenceClassification, DebertaV2Model
from transformers.models.deberta_v2.modeling_deberta_v2 import Dropout, make_log_bucket_position

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "fixtures" / "deberta_v2" / "models"
NAMES = sorted(p.name for p in MODELS.iterdir())
# fp32 eval: the reference and this implementation order the same float32 sums differently (SDPA, skewed
# products); observed max errors are ~1e-6 relative, so 1e-5 leaves head-room while catching any formula error.
TOL = 1e-5


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def run_fixture(name, **kw):
    model = DebertaV2ForSequenceClassification.from_pretrained(MODELS / name, **kw)
    expected = load_file(MODELS / name / "expected_hf.safetensors")
    with torch.no_grad():
        out = model(input_ids=expected["input_ids"], attention_mask=expected["attention_mask"],
                    token_type_ids=expected["token_type_ids"], output_hidden_states=True)
    return model, expected, out


@pytest.mark.parametrize("name", NAMES)
def test_parity_with_latest_transformers(name):
    model, expected, out = run_fixture(name)
    assert rel_err(out.logits, expected["logits"]) <= TOL
    # latest transformers gives fully-masked (padding) query rows uniform attention, 4.4.2 gives zeros: compare
    # hidden states at real tokens only.
    keep = expected["attention_mask"].bool()
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    for i, h in enumerate(out.hidden_states):
        assert rel_err(h[keep], expected[f"hidden_states.{i}"][keep]) <= TOL, i


@pytest.mark.parametrize("name", NAMES)
def test_parity_with_transformers_442_all_positions(name):
    _, _, out = run_fixture(name)
    ref = json.loads((MODELS / name / "expected_t442.json").read_text())
    assert rel_err(out.logits, torch.tensor(ref["logits"])) <= TOL
    for h, r in zip(out.hidden_states, ref["hidden_states"]):  # padding positions included (zero attention rows)
        assert rel_err(h, torch.tensor(r)) <= TOL


@pytest.mark.parametrize("name", NAMES)
def test_gradients_of_every_parameter_match_latest_transformers(name):
    """Full fine-tuning's backward pass: eval mode (no dropout), float64 on both sides, the loss of phase_grads."""
    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    from make_deberta_fixtures import grad_loss

    model = DebertaV2ForSequenceClassification.from_pretrained(MODELS / name).double().eval()
    expected = load_file(MODELS / name / "expected_grads_hf.safetensors")
    inputs = load_file(MODELS / name / "expected_hf.safetensors")
    loss = grad_loss(model, inputs, expected["labels"], expected["probe"])
    # float64 on both sides, except one constant: the reference takes sqrt(head size x score terms) in float32 (an
    # inexact root for 8, 24: relative errors up to 7e-8 seen; exact 1e-15 agreement where the root is exact).
    # 1e-6 is far below fp32 noise (~1e-5), and any wrong term, missing path or detached tensor.
    assert loss.item() == pytest.approx(expected["loss"].item(), rel=1e-6)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(p.requires_grad for p in model.parameters())
    assert set(grads) == {k[len("grad."):] for k in expected if k.startswith("grad.")}
    for n, g in grads.items():
        # + 1e-12: key biases cancel in the softmax, their true gradient is 0 (both give rounding noise, ~1e-15)
        want = expected[f"grad.{n}"]
        assert g is not None and (g - want).abs().max() <= 1e-6 * want.abs().max() + 1e-12, n


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_keys_are_the_hubs(name):
    model = DebertaV2ForSequenceClassification.from_pretrained(MODELS / name)
    assert set(model.state_dict()) == set(load_file(MODELS / name / "model.safetensors"))


def test_auto_classes_and_explicit_attention_path():
    name = "v2_buckets_conv"
    model = AutoModelForSequenceClassification.from_pretrained(MODELS / name)
    assert isinstance(model, DebertaV2ForSequenceClassification)
    e = load_file(MODELS / name / "expected_hf.safetensors")
    with torch.no_grad():
        out = model(input_ids=e["input_ids"], attention_mask=e["attention_mask"], output_attentions=True)
    assert rel_err(out.logits, e["logits"]) <= TOL
    mask = e["attention_mask"].bool()
    for probs in out.attentions:  # rows of real tokens sum to one over real keys; padding rows are all zero
        assert torch.allclose(probs.sum(-1)[mask[:, None].expand_as(probs.sum(-1))], torch.tensor(1.0), atol=1e-5)
        assert probs.transpose(1, 2)[~mask].abs().max() == 0
        assert probs.masked_select(~mask[:, None, None, :]).abs().max() == 0


# ---- the fast attention against the formulas, at lengths that exercise both the skew and the gather path ----
def split_heads(att, x):  # [..., n, heads * d] -> [..., heads, n, d]
    return x.unflatten(-1, (att.num_heads, att.head_size)).transpose(-3, -2)


def log_bucket(delta, buckets, max_position):
    """The DeBERTa log-bucket formula, one offset at a time: exact within +-buckets/2, log-spaced beyond."""
    mid = buckets // 2
    if abs(delta) <= mid:
        return delta
    return int(math.copysign(math.ceil(math.log(abs(delta) / mid) / math.log((max_position - 1) / mid) * (mid - 1))
                             + mid, delta))


def max_relative(config):
    return config.max_position_embeddings if config.max_relative_positions < 1 else config.max_relative_positions


def attention_span(config):
    """Rows of the relative table on each side of zero, from the config fields (as in 4.4.2)."""
    return config.position_buckets if config.position_buckets > 0 else max_relative(config)


def reference_bias(config, att, query, key, rel, length):
    """c2p + p2c as written in the DeBERTa paper / 4.4.2: full relative table, index clamp(delta + k), position
    projections taken straight from the layer weights. query/key: [B, heads, L, d], query already scaled."""
    span = attention_span(config)
    assert rel.shape[0] == 2 * span
    delta = [[i - j for j in range(length)] for i in range(length)]
    if config.position_buckets > 0:
        delta = [[log_bucket(d, config.position_buckets, max_relative(config)) for d in row] for row in delta]
    delta = torch.tensor(delta).view(length, length)
    idx = torch.clamp(delta + span, 0, 2 * span - 1)
    types = config.pos_att_type
    scale = math.sqrt(query.shape[-1] * (1 + len(types)))  # content-to-content plus one per position term
    bias = 0
    if "c2p" in types:
        layer = att.key_proj if config.share_att_key else att.pos_key_proj
        pk = split_heads(att, F.linear(rel, layer.weight, layer.bias))  # [heads, 2k, d]
        full = query @ pk.transpose(-1, -2)
        bias = bias + torch.gather(full, -1, idx.expand(*full.shape[:-1], length))
    if "p2c" in types:
        layer = att.query_proj if config.share_att_key else att.pos_query_proj
        pq = split_heads(att, F.linear(rel, layer.weight, layer.bias)) / scale
        full = key @ pq.transpose(-1, -2)  # [B, h, key j, 2k]
        idx_p = torch.clamp(-delta + span, 0, 2 * span - 1)  # gathered per key row, then transposed
        bias = bias + torch.gather(full, -1, idx_p.expand(*full.shape[:-1], length)).transpose(-1, -2)
    return bias


@pytest.mark.parametrize("extra", [
    dict(position_buckets=8, max_relative_positions=-1, share_att_key=True, pos_att_type="p2c|c2p"),
    dict(position_buckets=-1, max_relative_positions=6, share_att_key=False, pos_att_type="c2p"),
    dict(position_buckets=-1, max_relative_positions=-1, share_att_key=False, pos_att_type="p2c|c2p"),
    dict(position_buckets=16, max_relative_positions=40, share_att_key=False, pos_att_type="p2c"),
])
@pytest.mark.parametrize("length", [1, 4, 23, 70])
def test_fast_position_bias_matches_formulas(extra, length):
    torch.manual_seed(0)
    config = DebertaV2Config(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=8, max_position_embeddings=64, relative_attention=True,
                             hidden_dropout_prob=0.0, **extra)
    model = DebertaV2Model(config)
    encoder, att = model.encoder, model.encoder.layer[0].attention.self
    rel = torch.randn(attention_span(config) * 2, 16, requires_grad=True)
    q = torch.randn(2, 2, length, 8, requires_grad=True)
    k = torch.randn(2, 2, length, 8, requires_grad=True)

    def head_major(x):  # [B, heads, L, d] -> [heads * B, L, d], the layout the block uses
        return x.transpose(0, 1).reshape(-1, *x.shape[2:])

    fast = att.position_bias(head_major(q), head_major(k), rel, encoder.relative_positions(length, q.device))
    fast = fast.view(2, 2, length, length).transpose(0, 1)
    ref = reference_bias(config, att, q, k, rel, length)
    assert fast.shape == ref.shape == (2, 2, length, length)
    assert torch.allclose(fast, ref, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(ref)  # gradients agree too (the skew is slicing/reshaping only)
    g_fast = torch.autograd.grad((fast * weights).sum(), (q, k, rel), allow_unused=True)
    g_ref = torch.autograd.grad((ref * weights).sum(), (q, k, rel), allow_unused=True)
    for a, b in zip(g_fast, g_ref):  # None where a direction is off (c2p only: no key gradient)
        assert (a is None and b is None) or torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def reference_attention(config, att, hidden, pair_mask, rel):
    """One attention block written plainly: masked_fill inside autograd, XSoftmax's zeroed rows, no dropout."""
    length = hidden.shape[1]
    q = split_heads(att, att.query_proj(hidden)) / math.sqrt(att.head_size * (1 + len(config.pos_att_type)))
    k, v = split_heads(att, att.key_proj(hidden)), split_heads(att, att.value_proj(hidden))
    scores = q @ k.transpose(-1, -2) + reference_bias(config, att, q, k, rel, length)
    probs = torch.softmax(scores.masked_fill(~pair_mask[:, None], torch.finfo(scores.dtype).min), -1)
    row = pair_mask.any(-1)[:, None, :, None]
    return ((probs * row) @ v).transpose(1, 2).flatten(-2)


@pytest.mark.parametrize("length", [6, 40])  # skew and gather paths
def test_key_mask_outside_autograd_gives_the_same_gradients(length):
    # The block masks keys in place under no_grad; gradients must equal masking inside autograd, including rows
    # whose keys are all masked (a pairwise mask with a padding query row) and partly masked rows.
    torch.manual_seed(0)
    config = DebertaV2Config(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=8, max_position_embeddings=64, relative_attention=True,
                             position_buckets=8, share_att_key=True, pos_att_type="p2c|c2p",
                             norm_rel_ebd="layer_norm", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = DebertaV2Model(config).double()
    encoder, att = model.encoder, model.encoder.layer[0].attention.self
    hidden = torch.randn(2, length, 16, dtype=torch.float64, requires_grad=True)
    tokens = torch.ones(2, length, dtype=torch.bool)
    tokens[1, length // 2:] = False
    pair = tokens[:, :, None] & tokens[:, None, :]
    pair[0, 1, 3:] = False  # a partly masked row
    weights = torch.randn(2, length, 16, dtype=torch.float64)
    params = [hidden] + [p for p in model.parameters() if p.requires_grad]

    out = att(hidden, pair[:, None], pair.any(-1)[:, None, :, None].double(),
              encoder.relative_positions(length, hidden.device), encoder.get_rel_embedding())[0]
    ref = reference_attention(config, att, hidden, pair, encoder.get_rel_embedding())
    assert torch.allclose(out, ref, atol=1e-12)
    got = torch.autograd.grad((out * weights).sum(), params, allow_unused=True)
    want = torch.autograd.grad((ref * weights).sum(), params, allow_unused=True)
    checked = 0
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is not None:
            assert torch.allclose(g, w, atol=1e-12, rtol=1e-10)
            checked += 1
    assert checked >= 8  # hidden, q/k/v weights and biases, relative embeddings and their LayerNorm


def test_dropout_cpu_mask_is_unbiased_bernoulli():
    drop = Dropout(0.1)
    x = torch.ones(1 << 20, requires_grad=True)
    assert drop.eval()(x) is x  # eval: identity, as nn.Dropout
    torch.manual_seed(0)
    y = drop.train()(x)
    rate = round(0.1 * 65536) / 65536  # p on the 16-bit grid
    kept = y != 0
    # the dropped fraction is Binomial(n, rate) / n: within 5 standard deviations
    assert abs((~kept).double().mean().item() - rate) < 5 * math.sqrt(rate * (1 - rate) / x.numel())
    assert torch.equal(y[kept], torch.full_like(y[kept], 1 / (1 - rate)))  # kept values carry the exact scale
    g = torch.randn_like(x)
    y.backward(g)
    assert torch.allclose(x.grad, torch.where(kept, g / (1 - rate), torch.zeros_like(g)), rtol=1e-6, atol=0)
    torch.manual_seed(0)
    assert torch.equal(drop(x.detach()), y.detach())  # the global generator seeds it (set_seed reproduces runs)
    assert torch.equal(Dropout(0.0).train()(x), x) and Dropout(1.0).train()(x).abs().sum() == 0
    assert Dropout(1 - 1e-6).train()(x).isfinite().all()  # p just below 1 stays on the grid (no division by zero)
    # sizes that are not a multiple of four (the draws come four to a 64-bit word) keep shape and values
    odd = Dropout(0.5).train()(torch.ones(7, 3))
    assert odd.shape == (7, 3) and set(odd.unique().tolist()) <= {0.0, 2.0}


def test_log_buckets_known_values():
    # deberta-v3: 256 buckets over 512 positions; exact up to +-128, then log-spaced, odd around zero
    d = torch.tensor([0, 5, 127, 128, 129, 200, 511, 1000, -129, -511])
    got = make_log_bucket_position(d, 256, 512).tolist()
    assert got == [log_bucket(x, 256, 512) for x in d.tolist()] and got[6] == 255


# ---- LoRA as in the fork ----
def lora_model(share=True, **kw):
    fields = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                  max_position_embeddings=32, relative_attention=True, position_buckets=4, share_att_key=share,
                  pos_att_type="p2c|c2p", norm_rel_ebd="layer_norm", apply_lora=True, lora_r=4, lora_alpha=8,
                  num_labels=3)
    config = DebertaV2Config(**{**fields, **kw})
    torch.manual_seed(0)
    return DebertaV2ForSequenceClassification(config).eval()


def test_lora_layers_never_merge_and_start_at_zero():
    model = lora_model(initializer_range=0.05)
    att = model.deberta.encoder.layer[0].attention.self
    for layer in (att.query_proj, att.value_proj):
        assert layer.r == 4 and layer.scaling == 2.0 and not layer.merge_weights
        assert torch.all(layer.lora_B == 0)
    big = lora_model(initializer_range=0.05, hidden_size=256, num_attention_heads=4)
    a = torch.cat([m.lora_A.flatten() for m in big.modules() if hasattr(m, "lora_A")])
    assert abs(a.std().item() - 0.05) < 0.005 and abs(a.mean().item()) < 0.005  # N(0, initializer_range)
    ids = torch.randint(4, 40, (2, 9))
    before = model(ids).logits
    model.train()
    model.eval()  # toggling modes must not fold B@A into the weights
    assert torch.equal(model(ids).logits, before)


def test_lora_b_moves_query_and_value_but_not_the_position_query():
    model = lora_model()
    with torch.no_grad():  # weights large enough for a LoRA change to show in the logits
        for name, p in model.named_parameters():
            p.normal_(0.0, 0.0 if "lora_B" in name else 0.3).add_(1.0 if "LayerNorm.weight" in name else 0.0)
    att = model.deberta.encoder.layer[0].attention.self
    rel = model.deberta.encoder.get_rel_embedding()
    pos_q = att._pos_query(rel).detach().clone()
    ids = torch.randint(4, 40, (2, 9))
    base = model(ids).logits.detach()
    for name in ("query_proj", "value_proj"):
        layer = getattr(att, name)
        with torch.no_grad():
            layer.lora_B.normal_()
        moved = model(ids).logits.detach()
        assert (moved - base).abs().max() > 1e-3, name
        base = moved
    expected = F.linear(rel, att.query_proj.weight, att.query_proj.bias)
    assert torch.equal(att._pos_query(rel), expected) and torch.equal(att._pos_query(rel), pos_q)
    # explicit merging keeps the fork's semantics (position query still without the delta)
    lora.merge_lora(model)
    assert torch.allclose(model(ids).logits, base, atol=1e-5)
    assert torch.allclose(att._pos_query(rel), pos_q, atol=1e-6)
    lora.unmerge_lora(model)


def test_lora_parameter_count_xxlarge_shape():
    config = DebertaV2Config(hidden_size=1536, num_hidden_layers=48, num_attention_heads=24, intermediate_size=6144,
                             vocab_size=128100, relative_attention=True, position_buckets=256,
                             pos_att_type="p2c|c2p", share_att_key=True, apply_lora=True, lora_r=16, lora_alpha=32)
    with torch.device("meta"):  # shapes only, no 1.5B-parameter allocation
        model = DebertaV2ForSequenceClassification(config)
    assert lora.count_parameters(model)["lora"] == 4_718_592  # 48 layers x 2 projections x 2 x 16 x 1536


def test_lora_save_and_reload(tmp_path):
    model = lora_model()
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "lora_B"):
                m.lora_B.normal_()
    model.save_pretrained(tmp_path)
    again = DebertaV2ForSequenceClassification.from_pretrained(tmp_path)
    ids = torch.randint(4, 40, (2, 7))
    assert torch.equal(model(ids).logits, again(ids).logits)


# ---- head, R-Drop and Cutoff ----
def test_cls_dropout_falls_back_to_hidden_dropout():
    assert lora_model(hidden_dropout_prob=0.3).dropout.p == 0.3
    assert lora_model(hidden_dropout_prob=0.3, cls_dropout=0.15).dropout.p == 0.15


def no_dropout_model(num_labels=3, **kw):
    config = DebertaV2Config(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=16, max_position_embeddings=32, relative_attention=True,
                             position_buckets=4, pos_att_type="p2c|c2p", hidden_dropout_prob=0.0,
                             attention_probs_dropout_prob=0.0, cls_dropout=0.0, num_labels=num_labels, **kw)
    torch.manual_seed(0)
    return DebertaV2ForSequenceClassification(config)


def batch():
    ids = torch.tensor([[1, 9, 12, 33, 7, 2, 15, 2], [1, 5, 6, 2, 0, 0, 0, 0], [1, 21, 22, 23, 24, 25, 26, 2]])
    return ids, (ids != 0).long()


def hand_kl(logits, target_logits):
    p = F.softmax(target_logits, -1)
    return (p * (p.log() - F.log_softmax(logits, -1))).sum() / p.numel()  # reduction="mean": over all elements


def test_cutoff_and_rdrop_loss_equal_hand_computation():
    model = no_dropout_model(reg_loss_wgt=0.7, masking_prob=0.5)
    ids, mask = batch()
    labels = torch.tensor([2, -1, 0])  # -1 rows are ignored, as in 4.4.2
    model.train()
    torch.manual_seed(123)
    loss = model(ids, attention_mask=mask, labels=labels).loss
    torch.manual_seed(123)
    cut = model.cutoff_inputs(ids, mask)
    assert not torch.equal(cut, ids)
    model.eval()
    with torch.no_grad():
        l1 = model(ids, attention_mask=mask).logits[[0, 2]]
        l2 = model(cut, attention_mask=mask).logits[[0, 2]]
    y = labels[[0, 2]]
    m = (l1 + l2) / 2
    ce = lambda z: -F.log_softmax(z, -1).gather(1, y[:, None]).mean()  # noqa: E731
    want = ce(l1) + ce(l2) + 0.5 * 0.7 * (hand_kl(l1, m) + hand_kl(l2, m))
    assert torch.allclose(loss, want, atol=1e-6)
    with torch.no_grad():  # eval mode: a single pass and the plain loss (documented departure from the fork)
        assert torch.allclose(model(ids, attention_mask=mask, labels=labels).loss, ce(l1), atol=1e-6)


def test_rdrop_regression_uses_mse_consistency():
    model = no_dropout_model(num_labels=1, reg_loss_wgt=2.0, masking_prob=0.4)
    ids, mask = batch()
    labels = torch.tensor([0.5, 1.5, -2.0])
    model.train()
    torch.manual_seed(7)
    loss = model(ids, attention_mask=mask, labels=labels).loss
    torch.manual_seed(7)
    cut = model.cutoff_inputs(ids, mask)
    model.eval()
    with torch.no_grad():
        l1, l2 = model(ids, attention_mask=mask).logits.view(-1), model(cut, attention_mask=mask).logits.view(-1)
    m = (l1 + l2) / 2
    mse = lambda a, b: ((a - b) ** 2).mean()  # noqa: E731
    want = mse(l1, labels) + mse(l2, labels) + 0.5 * 2.0 * (mse(l1, m) + mse(l2, m))
    assert torch.allclose(loss, want, atol=1e-6)


@pytest.mark.parametrize("weight", [0.0, 1.5])
def test_rdrop_loss_with_dropout_is_ce_plus_weighted_symmetric_kl(weight):
    # Two training passes that differ only by dropout: the loss must be CE(l1) + CE(l2) + weight/2 * (KL(m||l1) +
    # KL(m||l2)) of the logits the passes produced (read at the classifier), and weight 0 is one pass of plain CE.
    model = no_dropout_model(reg_loss_wgt=weight)
    model.dropout.p = 0.5
    with torch.no_grad():  # logits of order one, so that the KL term is far above the float tolerance
        model.classifier.weight.normal_(0.0, 5.0)
    ids, mask = batch()
    labels = torch.tensor([0, 1, 2])
    seen = []
    model.classifier.register_forward_hook(lambda module, args, out: seen.append(out.detach()))
    model.train()
    torch.manual_seed(0)
    loss = model(ids, attention_mask=mask, labels=labels).loss
    ce = lambda z: F.cross_entropy(z, labels)  # noqa: E731
    if weight == 0:
        assert len(seen) == 1 and torch.allclose(loss, ce(seen[0]), atol=1e-6)
        return
    l1, l2 = seen
    assert (l1 - l2).abs().max() > 1e-3  # dropout made the passes differ, so the KL term is not zero
    m = (l1 + l2) / 2
    kl = hand_kl(l1, m) + hand_kl(l2, m)
    assert kl > 1e-2
    assert torch.allclose(loss, ce(l1) + ce(l2) + 0.5 * weight * kl, atol=1e-6)
    loss.backward()
    assert model.classifier.weight.grad.abs().sum() > 0


def test_cutoff_never_touches_cls_sep_padding():
    model = no_dropout_model(masking_prob=0.5)
    ids = torch.randint(4, 40, (64, 50))
    ids[:, 0], ids[:, 30], ids[:, 40:] = 1, 2, 0
    mask = (ids != 0).long()
    torch.manual_seed(0)
    cut = model.cutoff_inputs(ids, mask)
    changed = cut != ids
    assert torch.all(cut[changed] == 3)  # [UNK]
    assert not changed[:, [0, 30]].any() and not changed[:, 40:].any()
    rate = changed[:, 1:30].float().mean().item()
    assert 0.45 < rate < 0.55


def test_cutoff_needs_input_ids():
    model = no_dropout_model(reg_loss_wgt=1.0, masking_prob=0.1).train()
    with pytest.raises(ValueError, match="input_ids"):
        model(inputs_embeds=torch.randn(1, 4, 16), labels=torch.tensor([0]))


# ---- run_glue.py end to end ----
EXAMPLES = ROOT / "examples" / "text-classification"


@pytest.mark.skipif(not (EXAMPLES / "run_glue.py").is_file(), reason="examples/text-classification/run_glue.py absent")
def test_run_glue_trains_tiny_deberta_with_lora(tmp_path):
    import shutil

    sys.path.insert(0, str(ROOT / "tests"))
    from glue_utils import write_glue_task

    spec = importlib.util.spec_from_file_location("run_glue_deberta", EXAMPLES / "run_glue.py")
    run_glue = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_glue)

    model_dir = tmp_path / "tiny-deberta"
    shutil.copy(ROOT / "tests" / "fixtures" / "deberta_v2" / "tokenizer" / "tiny_spm.model", tmp_path / "spm.model")
    from transformers import DebertaV2Tokenizer
    tokenizer = DebertaV2Tokenizer.from_pretrained(tmp_path)
    config = DebertaV2Config(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=32, max_position_embeddings=64, relative_attention=True,
                             position_buckets=8, pos_att_type="p2c|c2p", share_att_key=True,
                             norm_rel_ebd="layer_norm", position_biased_input=False, conv_kernel_size=3)
    torch.manual_seed(0)
    DebertaV2ForSequenceClassification(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    # the label is the marker word in sentence1 (glue_utils): learnable, chance is 0.5
    data = write_glue_task("rte", str(tmp_path / "glue"), n=32, seed=1)[0]
    out = tmp_path / "out"
    flags = {"reg_loss_wgt": 0.7, "masking_prob": 0.05, "cls_dropout": 0.15, "lora_r": 4, "lora_alpha": 8}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 16-wide model: threads only add overhead
    try:
        run_glue.main(["--model_name_or_path", str(model_dir), "--task_name", "rte", "--data_dir", data,
                       "--do_train", "--do_eval", "--output_dir", str(out), "--overwrite_output_dir",
                       "--max_seq_length", "48", "--per_device_train_batch_size", "8", "--learning_rate", "5e-2",
                       "--num_train_epochs", "20", "--seed", "0", "--report_to", "none", "--disable_tqdm", "true",
                       "--save_strategy", "no", "--apply_lora"]
                      + [a for k, v in flags.items() for a in (f"--{k}", str(v))])
    finally:
        torch.set_num_threads(threads)
    # the method flags reach the saved config, and the saved model is built from them
    saved = json.loads((out / "config.json").read_text())
    assert {k: saved.get(k) for k in [*flags, "apply_lora"]} == {**flags, "apply_lora": True}
    tuned = DebertaV2ForSequenceClassification.from_pretrained(out)
    assert (tuned.reg_loss_wgt, tuned.masking_prob, tuned.dropout.p) == (0.7, 0.05, 0.15)
    assert tuned.deberta.encoder.layer[0].attention.self.query_proj.r == 4
    # it learned: 32 dev examples at chance reach 24 correct with probability ~0.4%; observed 0.9
    metrics = json.loads((out / "eval_results.json").read_text())
    assert metrics["eval_accuracy"] >= 0.75 and metrics["eval_loss"] < math.log(2), metrics
