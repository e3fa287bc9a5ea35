"""LoRA on top of loralib: layer construction, explicit merging, and the helpers that act on a model (which
parameters train, the LoRA + head state dict, parameter counts).

loralib's Linear merges B@A into the frozen weight on .eval() and subtracts it again on .train() when
merge_weights=True. That silently ignores a LoRA state dict loaded while the model is in eval mode and lets frozen
weights drift by rounding. Here layers are always built with merge_weights=False; merging is an explicit call
(`merge_lora`) that `unmerge_lora` undoes by restoring the saved weight, bit for bit.

This is the bottom layer of the LoRA code: it reads and writes no files. Loading a LoRA checkpoint into a model
(`load_lora_state_dict`) lives in `transformers.method_loading`; the file layouts (the fork's files, PEFT adapter
folders, merged export: `save_peft_adapter`, `export_merged`) in `transformers.lora_interop`.
"""
import loralib
import torch
import torch.nn.functional as F
from torch import nn

from .parameter_groups import backbone_of, is_adapter_key, is_head, is_lora_key


def lora_linear(in_features, out_features, config, bias=True):
    """nn.Linear, or loralib.Linear with rank config.lora_r and scaling lora_alpha / lora_r when config.apply_lora."""
    if not getattr(config, "apply_lora", False):
        return nn.Linear(in_features, out_features, bias=bias)
    r, alpha = getattr(config, "lora_r", None), getattr(config, "lora_alpha", None)
    if not isinstance(r, int) or isinstance(r, bool) or r <= 0:
        raise ValueError(f"apply_lora needs a positive integer lora_r, got {r!r}: set lora_r (the paper uses 8 or 16)")
    if alpha is None or alpha <= 0:
        raise ValueError(f"apply_lora needs a positive lora_alpha, got {alpha!r}: set lora_alpha (e.g. 16)")
    return LoRALinear(in_features, out_features, r=r, lora_alpha=alpha, bias=bias,
                      lora_dropout=getattr(config, "lora_dropout", 0.0) or 0.0, merge_weights=False)


class LoRALinear(loralib.Linear):
    """loralib.Linear (same parameters, initialisation draws and state dict) with a leaner low-rank path: the scaling
    multiplies the r-wide product x A^T instead of the output, and the product with B^T accumulates into the frozen
    layer's output in place; loralib spends two more passes over the output (scale, add) and one in the backward."""

    def forward(self, x):
        if self.r == 0 or self.merged:
            return super().forward(x)
        weight = self.weight.transpose(0, 1) if self.fan_in_fan_out else self.weight
        result = F.linear(x, weight, self.bias)
        low = (self.lora_dropout(x) @ self.lora_A.transpose(0, 1)) * self.scaling
        result.view(-1, self.out_features).addmm_(low.view(-1, self.r), self.lora_B.to(result.dtype).transpose(0, 1))
        return result


def _lora_layers(model):
    return [m for m in model.modules() if isinstance(m, loralib.LoRALayer) and getattr(m, "r", 0) > 0]


def _delta(m):
    delta = (m.lora_B @ m.lora_A) * m.scaling
    return delta.transpose(0, 1) if getattr(m, "fan_in_fan_out", False) else delta


@torch.no_grad()
def merge_lora(model):
    """Fold B@A*scaling into each LoRA layer's weight for inference or export. Undo with `unmerge_lora`."""
    for m in _lora_layers(model):
        if not m.merged:
            m._weight_before_merge = m.weight.detach().clone()
            m.weight += _delta(m).to(m.weight.dtype)
            m.merged = True
    return model


@torch.no_grad()
def unmerge_lora(model):
    """Restore each merged layer's original weight exactly (a copy, not a subtraction)."""
    for m in _lora_layers(model):
        if m.merged:
            m.weight.copy_(m._weight_before_merge)
            del m._weight_before_merge
            m.merged = False
    return model


def mark_only_lora_as_trainable(model, extra=("classifier",)):
    """Train only lora_A/lora_B (+ parameters under the top-level modules named in `extra`)."""
    for name, p in model.named_parameters():
        p.requires_grad = is_lora_key(name) or name.split(".")[0] in extra
    return model


def fork_trainable_rule(model, apply_lora=False, apply_adapter=False, apply_bitfit=False):
    """The fork's rule: when any of LoRA/adapters/BitFit is on, backbone parameters train only if their name has
    'lora' / 'adapter' / 'bias' respectively; the head (everything outside the backbone, and the head modules a family
    keeps inside it, BERT's pooler: see parameter_groups) trains. Otherwise all train.
    """
    keywords = [kw for on, kw in ((apply_lora, "lora"), (apply_adapter, "adapter"), (apply_bitfit, "bias")) if on]
    backbone = backbone_of(model)
    for name, p in model.named_parameters():
        p.requires_grad = not keywords or is_head(name, backbone) or any(kw in name for kw in keywords)
    return model


def lora_state_dict(model):
    """LoRA tensors plus the head (parameter_groups.is_head): what a LoRA run needs to be restored."""
    backbone = backbone_of(model)
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters()
            if is_lora_key(name) or is_head(name, backbone)}


def count_parameters(model):
    """Parameter counts: total, trainable, and the LoRA tensors, the adapters and the head (parameter_groups.is_head:
    outside the backbone, plus BERT's pooler)."""
    backbone = backbone_of(model)
    counts = {"lora": 0, "adapter": 0, "head": 0, "trainable": 0, "total": 0}
    for name, p in model.named_parameters():
        n = p.numel()
        counts["total"] += n
        counts["trainable"] += n if p.requires_grad else 0
        if is_lora_key(name):
            counts["lora"] += n
        elif is_adapter_key(name):
            counts["adapter"] += n
        elif is_head(name, backbone):
            counts["head"] += n
    return counts

