"""The lean CPU training attention (transformers.attention.LeanAttention) against torch's scaled_dot_product_attention
on the same inputs and seed. float64: the two differ only in where 1/sqrt(d) is applied and in summation order,
~1e-16, so 1e-12 is tight; a different dropout draw or a wrong gradient term moves results by O(0.1)."""
import pytest
import torch
import torch.nn.functional as F

from transformers.attention import LeanAttention, kept_value, scaled_dot_product_attention


def inputs(needs=(True, True, True), masked=True):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 4, 7, 8, generator=g, dtype=torch.float64, requires_grad=r) for r in needs)
    mask = None
    if masked:
        mask = torch.zeros(3, 1, 1, 7, dtype=torch.float64)
        mask[1, ..., 4:] = -10000.0
        mask[2, ..., 6:] = -10000.0
    return q, k, v, mask


def outcome(fn, q, k, v, mask, p):
    torch.manual_seed(5)
    out = fn(q, k, v, mask, p)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    grads = torch.autograd.grad((out * weights).sum(), [t for t in (q, k, v) if t.requires_grad])
    return out.detach(), grads, torch.rand(3)


def torch_kernel(q, k, v, mask, p):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)


@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("needs", [(True, True, True), (True, False, True), (False, False, True)])
def test_lean_attention_equals_torch_kernel(masked, needs):
    q, k, v, mask = inputs(needs, masked)
    ours = outcome(LeanAttention.apply, q, k, v, mask, 0.3)
    ref = outcome(torch_kernel, q, k, v, mask, 0.3)
    assert torch.allclose(ours[0], ref[0], rtol=0, atol=1e-12)
    assert len(ours[1]) == len(ref[1]) == sum(needs)
    for a, b in zip(ours[1], ref[1]):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)
    assert torch.equal(ours[2], ref[2])  # the same random numbers were drawn
    assert (ours[0] - outcome(torch_kernel, q, k, v, mask, 0.0)[0]).abs().max() > 1e-2  # dropout did act


def test_lean_path_keeps_less_for_the_backward():
    """What autograd keeps per call beside q, k, v: torch's kernel at least two float [B, h, L, L] tensors (softmax
    output, dropout mask, dropped probabilities; three in a RoBERTa step), the lean path one and a byte mask."""
    q, k, v, mask = inputs()
    sizes = {}
    for name, fn in (("lean", LeanAttention.apply), ("torch", torch_kernel)):
        seen = {}

        def keep(t):
            if t.dim() == 4 and t.shape[-1] == t.shape[-2] == 7:  # score-shaped, not q/k/v
                seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t
        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
            fn(q, k, v, mask, 0.3)
        sizes[name] = sum(seen.values())
    square = 3 * 4 * 7 * 7
    assert sizes["lean"] == square * (8 + 1)  # float64 probabilities + bool mask
    assert sizes["torch"] >= 2 * square * 8


def test_dispatch():
    q, k, v, mask = inputs()
    torch.manual_seed(0)
    with torch.no_grad():  # nothing to keep: torch's kernel, same numbers
        a = scaled_dot_product_attention(q, k, v, mask, 0.3)
    torch.manual_seed(0)
    b = LeanAttention.apply(q, k, v, mask, 0.3)
    assert torch.allclose(a, b, atol=1e-12, rtol=0)
    assert scaled_dot_product_attention(q, k, v, mask, 0.3).grad_fn.name().startswith("LeanAttention")
    assert "LeanAttention" not in scaled_dot_product_attention(q, k, v, mask, 0.0).grad_fn.name()


def test_bf16_runs_lean_in_float32_like_torch_kernel():
    """torch's CPU kernel upcasts bf16 to float32 (and keeps float32 tensors for the backward); the lean path does the
    same, draws the same numbers and returns bf16. Tolerance: one bf16 ulp of outputs ~1 (2**-7), from the final
    rounding of two float32 results that differ only in summation order."""
    q, k, v, mask = inputs()
    q, k, v = (t.detach().bfloat16().requires_grad_() for t in (q, k, v))
    results = []
    for fn in (torch_kernel, scaled_dot_product_attention):
        torch.manual_seed(5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = fn(q, k, v, mask.bfloat16(), 0.3)
        grads = torch.autograd.grad(out.float().square().sum(), [q, k, v])
        results.append((out, grads, torch.rand(2)))
    (ref, ref_grads, ref_next), (out, grads, nxt) = results
    assert out.dtype == ref.dtype == torch.bfloat16
    assert torch.allclose(out.float(), ref.float(), rtol=2 ** -7, atol=2 ** -7)
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a.float(), b.float(), rtol=2 ** -6, atol=2 ** -6)
    assert torch.equal(nxt, ref_next)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [0.1, 0.15, 0.3, 1 / 3, 0.45])
def test_kept_value_is_what_dropout_multiplies_by(dtype, p):
    """The backward rebuilds the mask as keep * kept_value: it must be the very number dropout used (bit-equal)."""
    torch.manual_seed(0)
    factor = F.dropout(torch.ones(4096, dtype=dtype), p)
    assert torch.equal(factor.unique(), torch.stack([torch.zeros((), dtype=dtype), kept_value(dtype, p)]))
