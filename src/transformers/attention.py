"""Scaled dot-product attention for RoBERTa and BERT: torch's fused kernel, or a lean CPU training path.

Training on CPU with attention dropout, torch's kernel runs the plain ops under autograd, which keeps the softmax
output, the float dropout mask and the dropped probabilities for the backward: three [batch, heads, len, len] float
tensors per layer. `LeanAttention` computes the same thing and keeps the probabilities and a one-byte keep mask;
the backward rebuilds the dropped probabilities from them (one multiply). About a fifth of a RoBERTa-base training
step's activation memory. The dropout mask comes from the same dropout call on the same shape, so the random
stream is the one torch's kernel (and 4.4.2's nn.Dropout on the probabilities) draws. Under bf16 autocast torch's
CPU kernel computes in float32 and keeps float32 tensors, so the lean path does the same and saves as much.
"""
import math

import torch
import torch.nn.functional as F


class LeanAttention(torch.autograd.Function):
    """dropout(softmax(q k^T / sqrt(d) + mask)) v for q, k, v [..., len, d] and an additive mask (or None)."""

    @staticmethod
    def forward(ctx, q, k, v, mask, p):
        # head-split projections arrive as strided views: one copy each here spares one per product below
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        scores = torch.matmul(q, k.transpose(-1, -2)).div_(math.sqrt(q.shape[-1]))
        if mask is not None:
            scores += mask
        probs = torch.softmax(scores, dim=-1)
        del scores
        # torch's dropout on the probabilities, step by step: Bernoulli(1 - p) draws over their shape, / (1 - p)
        factor = torch.empty_like(probs).bernoulli_(1 - p).div_(1 - p)
        context = torch.matmul(probs * factor, v)
        ctx.save_for_backward(q, k, v, probs, factor.bool(), kept_value(probs.dtype, p))
        return context

    @staticmethod
    def backward(ctx, grad):
        q, k, v, probs, keep, scale = ctx.saved_tensors
        grad = grad.contiguous()
        factor = keep * scale  # the forward's factor, exactly
        grad_q = grad_k = grad_v = None
        if ctx.needs_input_grad[2]:
            grad_v = torch.matmul((probs * factor).transpose(-1, -2), grad)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            grad_probs = torch.matmul(grad, v.transpose(-1, -2)).mul_(factor)
            grad_scores = torch._softmax_backward_data(grad_probs, probs, -1, probs.dtype)
            root = math.sqrt(q.shape[-1])  # the scores' 1 / sqrt(d), applied to the smaller [..., len, d] products
            if ctx.needs_input_grad[0]:
                grad_q = torch.matmul(grad_scores, k).div_(root)
            if ctx.needs_input_grad[1]:
                grad_k = torch.matmul(grad_scores.transpose(-1, -2), q).div_(root)
        return grad_q, grad_k, grad_v, None, None


def kept_value(dtype, p):
    """What dropout multiplies a kept element by: 1 / (1 - p) as torch's division rounds it in `dtype`."""
    return torch.ones((), dtype=dtype).div_(1 - p)


def scaled_dot_product_attention(q, k, v, mask, dropout_p):
    """softmax(q k^T / sqrt(d) + mask) with dropout dropout_p, times v; the lean path where it saves memory.
    bf16/fp16 inputs run it in float32 and return their own dtype, as torch's CPU kernel does (it upcasts too)."""
    lean = (0 < dropout_p < 1 and q.device.type == "cpu" and torch.is_grad_enabled()
            and (q.requires_grad or k.requires_grad or v.requires_grad))
    if not lean:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    if q.dtype == torch.float64:
        return LeanAttention.apply(q, k, v, mask, dropout_p)
    with torch.autocast("cpu", enabled=False):
        as32 = [None if t is None else t.float() for t in (q, k, v, mask)]
        return LeanAttention.apply(*as32, dropout_p).to(q.dtype)
