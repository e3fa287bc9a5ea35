"""Packed tokens (transformers.packing): classification models run their per-token work on the real tokens of a
padded batch only. Reference: the same model with model.pack_tokens = False (the padded computation, which the
4.4.2 parity tests pin). In float64 the two agree to ~1e-16 (only GEMM summation order differs: fewer rows), so
1e-12 is a tight bound; a wrong dropout row, a padding key that leaks into attention or a skipped position-0 row
moves logits or gradients by O(1e-2) or more. The random stream after the step must be identical too."""
import pytest
import torch

from transformers import (BertConfig, BertForSequenceClassification, DebertaV2Config,
                          DebertaV2ForSequenceClassification, RobertaConfig, RobertaForSequenceClassification)
from transformers.models.deberta_v2.modeling_deberta_v2 import Dropout as DebertaDropout
from transformers.packing import PackedTokens, dropout

SMALL = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             max_position_embeddings=40, num_labels=3, hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2)


def roberta(**kw):
    return RobertaForSequenceClassification(RobertaConfig(**{**SMALL, "pad_token_id": 1, **kw}))


def bert(**kw):
    return BertForSequenceClassification(BertConfig(**{**SMALL, "pad_token_id": 0, **kw}))


def deberta(**kw):
    fields = dict(relative_attention=True, position_buckets=8, max_relative_positions=16, pos_att_type="p2c|c2p",
                  share_att_key=True, norm_rel_ebd="layer_norm", pad_token_id=0, type_vocab_size=0, cls_dropout=0.2)
    return DebertaV2ForSequenceClassification(DebertaV2Config(**{**SMALL, **fields, **kw}))


def batch(lengths, total=11, left=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 60, (len(lengths), total), generator=g)
    mask = torch.zeros(len(lengths), total, dtype=torch.long)
    for row, n in enumerate(lengths):
        if left:
            mask[row, total - n:] = 1
        else:
            mask[row, :n] = 1
    return ids.masked_fill(mask == 0, 0), mask


def run(model, ids, mask, labels, pack, seed=7):
    """One training step's forward + backward; returns logits, parameter grads and the next random numbers."""
    model.pack_tokens = pack
    model.zero_grad()
    torch.manual_seed(seed)
    out = model(ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.logits.detach(), grads, torch.rand(4)


def assert_same(model, ids, mask, labels=None, tol=1e-12):
    if labels is None:
        labels = torch.arange(len(ids)) % model.num_labels
    torch.manual_seed(0)
    padded = run(model, ids, mask, labels, pack=False)
    packed = run(model, ids, mask, labels, pack=True)
    assert torch.allclose(padded[0], packed[0], rtol=0, atol=tol), (padded[0] - packed[0]).abs().max()
    assert padded[1].keys() == packed[1].keys() and padded[1]
    for name, grad in padded[1].items():
        # relative too: DeBERTa's all-zero padding rows at position 0 reach LayerNorm and give gradients ~1e10
        assert torch.allclose(grad, packed[1][name], rtol=1e-10, atol=tol), (name, (grad - packed[1][name]).abs().max())
    assert torch.equal(padded[2], packed[2]), "packing drew a different number of random values"
    return padded


def lora_model(factory, **kw):
    torch.manual_seed(0)
    model = factory(apply_lora=True, lora_r=4, lora_alpha=8, **kw).double().train()
    with torch.no_grad():  # lora_B starts at zero; make the LoRA path carry gradient into the comparison
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    return model


@pytest.mark.parametrize("factory", [roberta, bert, deberta])
def test_packed_training_step_equals_padded(factory):
    model = lora_model(factory)
    ids, mask = batch([11, 4, 2, 7])
    logits, grads, _ = assert_same(model, ids, mask)
    assert any("lora_A" in n for n in grads) and logits.std() > 0


@pytest.mark.parametrize("factory", [roberta, bert, deberta])
def test_left_padding_and_eval_mode(factory):
    """Left padding puts padding at position 0, which heads read: it is still computed, as in the padded model."""
    model = lora_model(factory)
    ids, mask = batch([3, 11, 6], left=True, seed=1)
    assert_same(model, ids, mask)
    model.eval()
    with torch.no_grad():
        model.pack_tokens = False
        padded = model(ids, attention_mask=mask).logits
        model.pack_tokens = True
        packed = model(ids, attention_mask=mask).logits
    assert torch.allclose(padded, packed, rtol=0, atol=1e-12)


def test_padding_keys_would_change_the_result():
    """The property packing relies on, shown to bite: unmasking padding changes the logits of the real tokens."""
    model = lora_model(roberta).eval()
    ids, mask = batch([11, 4])
    with torch.no_grad():
        masked = model(ids, attention_mask=mask).logits
        unmasked = model(ids, attention_mask=torch.ones_like(mask)).logits
    assert (masked[1] - unmasked[1]).abs().max() > 1e-4


def test_roberta_adapters_gradient_checkpointing_and_regression():
    torch.manual_seed(0)
    model = roberta(apply_adapter=True, adapter_type="houlsby", adapter_size=4, num_labels=1,
                    gradient_checkpointing=True).double().train()
    ids, mask = batch([5, 11, 1])
    assert_same(model, ids, mask, labels=torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))


def test_deberta_rdrop_and_cutoff_second_pass():
    model = lora_model(deberta, reg_loss_wgt=1.0, masking_prob=0.3)
    ids, mask = batch([9, 3, 11, 5], seed=2)
    ids[:, 0] = 1  # [CLS]
    assert_same(model, ids, mask)


def test_deberta_without_shared_keys_or_buckets():
    model = lora_model(deberta, share_att_key=False, position_buckets=-1, norm_rel_ebd="none")
    ids, mask = batch([2, 11, 8], seed=3)
    assert_same(model, ids, mask)


def test_bert_relative_positions():
    model = lora_model(bert, position_embedding_type="relative_key_query")
    ids, mask = batch([6, 11, 3], seed=4)
    assert_same(model, ids, mask)


def test_when_packing_stays_off():
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    packing = PackedTokens.for_batch(mask)
    assert packing.index.tolist() == [0, 1, 3]
    x = torch.arange(6.0).view(2, 3, 1)
    assert packing.pack(x).view(-1).tolist() == [0.0, 1.0, 3.0]
    assert packing.unpack(packing.pack(x)).view(-1).tolist() == [0.0, 1.0, 0.0, 3.0, 0.0, 0.0]
    assert PackedTokens.for_batch(torch.ones(2, 3)) is None  # nothing to save
    assert PackedTokens.for_batch(torch.tensor([[1, 0], [0, 0]])) is None  # a row without real tokens
    assert PackedTokens.for_batch(torch.ones(2, 3, 3)) is None  # pairwise mask
    assert PackedTokens.for_batch(None) is None
    assert PackedTokens.for_batch(torch.tensor([[0, 1, 1], [1, 1, 0]])).index.tolist() == [0, 1, 2, 3, 4]


def test_lora_dropout_and_hidden_outputs_run_padded():
    """LoRA dropout draws over its input's shape inside loralib, so it forces the padded path; so do outputs that
    show every position. Both must still give the padded model's numbers (they are the padded model)."""
    model = lora_model(roberta, lora_dropout=0.3)
    ids, mask = batch([11, 4, 6])
    assert_same(model, ids, mask)
    model = lora_model(bert)
    out = model(ids, attention_mask=mask, output_hidden_states=True)
    assert out.hidden_states[-1][1, 5:].abs().sum() > 0  # padding rows computed, not zero-filled


def test_bf16_autocast_matches_padded():
    """bf16 autocast: the same ops on fewer rows; dropout factors are drawn in bf16 as the padded model draws them.
    Tolerance: a few bf16 ulps of logits ~0.1 (2**-8 relative), since GEMM blocking may differ with the row count."""
    torch.manual_seed(0)
    model = roberta(apply_lora=True, lora_r=4, lora_alpha=8).train()
    ids, mask = batch([11, 4, 2, 7])
    results = []
    for pack in (False, True):
        model.pack_tokens = pack
        torch.manual_seed(3)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            results.append((model(ids, attention_mask=mask).logits.float(), torch.rand(2)))
    assert torch.allclose(results[0][0], results[1][0], rtol=0.02, atol=2e-3)
    assert torch.equal(results[0][1], results[1][1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("module", [torch.nn.Dropout(0.1), torch.nn.Dropout(0.35), DebertaDropout(0.1),
                                    torch.nn.Dropout(1.0), DebertaDropout(1.0)])
def test_dropout_helper_is_the_module_bit_for_bit(module, dtype):
    """transformers.packing.dropout against the module itself: same output, same gradient, same next random numbers,
    and a byte mask kept for the backward instead of a float one."""
    x0 = torch.randn(6, 5, 16, generator=torch.Generator().manual_seed(0)).to(dtype)
    weights = torch.randn(6, 5, 16, generator=torch.Generator().manual_seed(1)).to(dtype)
    results = []
    for fn in (module, lambda x: dropout(module, x)):
        x = x0.clone().requires_grad_()
        torch.manual_seed(2)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            out = fn(x)
        (out * weights).sum().backward()
        results.append((out.detach(), x.grad, torch.rand(3), saved))
    (ref, ref_grad, ref_next, ref_saved), (out, grad, nxt, saved) = results
    assert torch.equal(ref, out) and torch.equal(ref_grad, grad) and torch.equal(ref_next, nxt)
    if module.p == 1:  # everything dropped, nothing drawn
        assert not out.any()
        return
    assert (ref == 0).any() and (ref != 0).any()
    assert any(t.dtype == dtype and t.shape == x0.shape for t in ref_saved)  # the module keeps a float mask
    assert not any(t.dtype == dtype and t.shape == x0.shape for t in saved)  # the helper does not
    assert any(t.dtype == torch.bool and t.shape == x0.shape for t in saved)
