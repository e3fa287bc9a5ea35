"""Packed tokens: run the per-token work of an encoder on the real tokens of a padded batch only.

A GLUE batch is padded to its longest sentence, so often half of its rows are padding. Everything in a
Transformer layer except attention treats each token on its own (projections, LoRA, feed-forward, adapters,
LayerNorm, residuals, dropout), so those parts run on a [tokens, hidden] matrix that holds only the real tokens;
attention puts queries, keys and values back into [batch, len] and takes the context rows out again.

The result is the padded model's for every token a classification head reads:
  * a padding key scores -10000 (or is masked to the minimum) and so gets probability exactly 0 in the padded
    model; here its key and value are zeros, with the same probability 0, so it adds exactly nothing either way,
    and no gradient reaches it in either case;
  * dropout draws its mask for the whole padded [batch, len, hidden] tensor, the very draws the padded model makes,
    and applies the rows of the real tokens; later random numbers are therefore unchanged too.
Only padding rows of the last hidden state differ (zeros here): heads that read the first token use it, nothing
else. Position 0 of every row is always computed, padding or not, since that is the token a head reads.
"""
import torch
from torch import nn

from .attention import kept_value


class PackedTokens:
    """The kept positions of a [batch, len] batch (flat indices into batch * len), with pack and unpack."""

    def __init__(self, keep):
        self.batch, self.length = keep.shape
        self.index = keep.reshape(-1).nonzero().squeeze(1)

    @classmethod
    def for_batch(cls, attention_mask):
        """PackedTokens for a [batch, len] 1/0 mask, or None when packing would change a result or save nothing:
        no padding, a pairwise (3-D) mask, or a row without any real token (it attends to its padding)."""
        if attention_mask is None or attention_mask.dim() != 2:
            return None
        real = attention_mask != 0
        if bool(real.all()) or not bool(real.any(dim=1).all()):
            return None
        keep = real.clone()
        keep[:, 0] = True
        return cls(keep)

    def pack(self, x):
        """[batch, len, ...] -> [kept tokens, ...]"""
        return x.reshape(self.batch * self.length, *x.shape[2:]).index_select(0, self.index)

    def unpack(self, x):
        """[kept tokens, ...] -> [batch, len, ...], zeros at the positions not kept."""
        full = x.new_zeros(self.batch * self.length, *x.shape[1:])
        return full.index_copy_(0, self.index, x).view(self.batch, self.length, *x.shape[1:])


def packing_for(model, attention_mask, *unpacked_requests):
    """PackedTokens for a classification model's forward, or None when it must run padded: an output that needs
    every position (hidden states, attentions, a head mask: pass them as `unpacked_requests`), packing switched off
    (model.pack_tokens = False), or LoRA dropout in training (it draws over its input's shape inside loralib)."""
    config = model.config
    lora_dropout = getattr(config, "apply_lora", False) and (getattr(config, "lora_dropout", 0.0) or 0.0) > 0
    if not model.pack_tokens or any(unpacked_requests) or (lora_dropout and model.training):
        return None
    return PackedTokens.for_batch(attention_mask)


class ScaleByMask(torch.autograd.Function):
    """x * factor for a dropout factor (0 or `value`): the backward keeps a byte mask and that value, not the float
    factor (a quarter of the memory; both give the same gradient, bit for bit)."""

    @staticmethod
    def forward(ctx, x, factor, keep, value):
        ctx.save_for_backward(keep, value)
        return x * factor

    @staticmethod
    def backward(ctx, grad):
        keep, value = ctx.saved_tensors
        return grad * (keep * value), None, None, None


def dropout(module, x, packing=None):
    """module(x) for a dropout module, the rows of packed x when packing is on: the factor is the one the module
    multiplies the padded tensor by, from the same random draws, so the numbers and the random stream are the padded
    model's."""
    if not module.training or module.p == 0:
        return x
    if module.p >= 1 or (packing is None and x.device.type != "cpu"):
        return module(x)  # p = 1: zeros, no draws; on a GPU torch's fused dropout already keeps a byte mask
    shape = x.shape if packing is None else (packing.batch * packing.length, *x.shape[1:])
    if type(module) is nn.Dropout and x.device.type == "cpu":
        # what torch's CPU dropout does: Bernoulli(1 - p) draws over the shape, divided by 1 - p
        drawn = torch.empty(shape, dtype=x.dtype).bernoulli_(1 - module.p)
        if packing is not None:
            drawn = drawn.index_select(0, packing.index)
        keep, value = drawn.bool(), kept_value(x.dtype, module.p)
        factor = drawn.div_(1 - module.p)
    else:  # any other dropout (DeBERTa's, CUDA's fused kernel): ones through the module give its factor
        factor = module(x.new_ones(shape))
        if packing is not None:
            factor = factor.index_select(0, packing.index)
        keep, value = factor != 0, factor.amax()
    return ScaleByMask.apply(x, factor, keep, value)
