"""LoRA on top of loralib: layer construction, trainable-parameter rules, LoRA-only checkpoints, explicit merging.

loralib's Linear merges B@A into the frozen weight on .eval() and subtracts it again on .train() when
merge_weights=True. That silently ignores a LoRA state dict loaded while the model is in eval mode and lets frozen
weights drift by rounding. Here layers are always built with merge_weights=False; merging is an explicit call
(`merge_lora`) that `unmerge_lora` undoes by restoring the saved weight, bit for bit.
"""
import loralib
import torch
import torch.nn.functional as F
from torch import nn

from .utils import logging

logger = logging.get_logger(__name__)


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


def _backbone(model):
    return getattr(model, "base_model_prefix", "") or ""


def _in_backbone(name, prefix):
    return bool(prefix) and (name == prefix or name.startswith(prefix + "."))


def mark_only_lora_as_trainable(model, extra=("classifier",)):
    """Train only lora_A/lora_B (+ parameters under the top-level modules named in `extra`)."""
    for name, p in model.named_parameters():
        p.requires_grad = "lora_" in name or name.split(".")[0] in extra
    return model


def fork_trainable_rule(model, apply_lora=False, apply_adapter=False, apply_bitfit=False):
    """The fork's rule: when any of LoRA/adapters/BitFit is on, backbone parameters train only if their name has
    'lora' / 'adapter' / 'bias' respectively; everything outside the backbone (the head) trains. Otherwise all train.
    """
    keywords = [kw for on, kw in ((apply_lora, "lora"), (apply_adapter, "adapter"), (apply_bitfit, "bias")) if on]
    prefix = _backbone(model)
    for name, p in model.named_parameters():
        p.requires_grad = not keywords or not _in_backbone(name, prefix) or any(kw in name for kw in keywords)
    return model


def lora_state_dict(model):
    """LoRA tensors plus the head (every parameter outside the backbone): what a LoRA run needs to be restored."""
    prefix = _backbone(model)
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters()
            if "lora_" in name or not _in_backbone(name, prefix)}


def count_parameters(model):
    """Parameter counts: total, trainable, and the LoRA tensors, the adapters and the head (outside the backbone)."""
    from .adapters import is_adapter_key

    prefix = _backbone(model)
    counts = {"lora": 0, "adapter": 0, "head": 0, "trainable": 0, "total": 0}
    for name, p in model.named_parameters():
        n = p.numel()
        counts["total"] += n
        counts["trainable"] += n if p.requires_grad else 0
        if "lora_" in name:
            counts["lora"] += n
        elif is_adapter_key(name):
            counts["adapter"] += n
        elif not _in_backbone(name, prefix):
            counts["head"] += n
    return counts


def load_lora_state_dict(model, state_dict_or_path, source=None):
    """Load a LoRA (+head) checkpoint strictly: every tensor must exist in the model with the same shape and every
    LoRA tensor of the model must be in the file. A head whose shape differs (another label count, e.g. an MNLI
    warm start for RTE) is left freshly initialised, with a warning. Raises ValueError with one line otherwise.

    A path may be a legacy file, a PEFT adapter folder (its lora_alpha / r must match the model's) or a save folder
    of the trainer (see lora_interop.read_lora_path)."""
    from .lora_interop import check_adapter_fits, read_lora_path

    adapter_config = None
    if isinstance(state_dict_or_path, dict):
        sd, source = state_dict_or_path, source or "LoRA state dict"
    else:
        source = source or str(state_dict_or_path)
        sd, adapter_config = read_lora_path(state_dict_or_path)
    if not sd:
        raise ValueError(f"{source}: the file holds no tensors: pass a pytorch_model_lora.bin written by training")
    own = model.state_dict()
    prefix = _backbone(model)
    model_lora = [k for k in own if "lora_" in k]
    file_lora = [k for k in sd if "lora_" in k]
    if file_lora and not model_lora:
        raise ValueError(f"{source}: holds LoRA tensors ({file_lora[0]}, ...) but the model has no LoRA layers: "
                         "pass --apply_lora with the lora_r used in training")

    frozen = [k for k in sd if "lora_" not in k and _in_backbone(k, prefix)]
    if frozen:  # loading them would overwrite pretrained weights that LoRA keeps frozen
        raise ValueError(f"{source}: holds {len(frozen)} frozen backbone tensor(s), e.g. {frozen[0]}, so it is not "
                         "a LoRA file: pass the pytorch_model_lora.bin / model_lora.safetensors of a LoRA run")
    unknown = [k for k in sd if k not in own]
    if unknown:
        raise ValueError(f"{source}: {len(unknown)} tensor(s) match no model tensor, e.g. {unknown[0]}: the file "
                         "belongs to another model or architecture")
    bad = [(k, list(sd[k].shape), list(own[k].shape)) for k in sd if sd[k].shape != own[k].shape]
    backbone_bad = [b for b in bad if _in_backbone(b[0], prefix)]
    if backbone_bad:
        k, got, want = backbone_bad[0]
        hint = "the file was trained with another lora_r" if "lora_" in k else "the file belongs to another model size"
        raise ValueError(f"{source}: {k} has shape {got} in the file but {want} in the model "
                         f"({len(backbone_bad)} mismatched): {hint}")
    missing = [k for k in model_lora if k not in sd]
    if missing:
        raise ValueError(f"{source}: {len(missing)} LoRA tensor(s) of the model are missing from the file, e.g. "
                         f"{missing[0]}: the file is incomplete or from a model with fewer layers/targets")
    if adapter_config is not None:
        check_adapter_fits(model, adapter_config, source)
    return load_checked(model, sd, bad, source, "the LoRA tensors")


def load_checked(model, sd, bad, source, what):
    """Load a checked method (+ head) state dict. `bad` lists (key, file shape, model shape) of the head tensors
    whose shape differs (another label count): then the whole head stays freshly initialised, with a warning."""
    prefix = _backbone(model)
    skipped = [k for k in sd if not _in_backbone(k, prefix)] if bad else []
    if bad:
        logger.warning(f"{source}: head shape differs ({bad[0][0]}: file {bad[0][1]} vs model {bad[0][2]}, "
                       f"another label count); the head is re-initialised and only {what} are loaded")
    model.load_state_dict({k: v for k, v in sd.items() if k not in skipped}, strict=False)
    return {"loaded": [k for k in sd if k not in skipped], "reinitialised_head": skipped}


def export_merged(model, save_directory, check=True):
    """A plain model folder for stock Transformers with the LoRA deltas folded in (see lora_interop.export_merged)."""
    from .lora_interop import export_merged as _export

    return _export(model, save_directory, check=check)


def save_peft_adapter(model, save_directory):
    """The LoRA + head tensors as a PEFT adapter folder (see lora_interop.save_peft_adapter)."""
    from .lora_interop import save_peft_adapter as _save

    return _save(model, save_directory)
