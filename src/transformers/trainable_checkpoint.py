"""Checkpoints that hold only what trains (TrainingArguments.save_trainable_only).

A LoRA, adapter or BitFit run changes a small part of the model; the rest stays what from_pretrained read from the
base model. Such a checkpoint-N holds:
- model_trainable.safetensors: every trainable tensor, and every frozen one that is not the base's (missing from
  the base file, e.g. a pooler it lacks, or changed since loading), so that nothing depends on a random draw;
- base_model.json: the base's name or path, and the name, size and sha256 of its weights file.
The model is rebuilt from the base's tensors with that file's laid over them, bit for bit; a base whose weights file
changed since is refused in one line rather than silently giving another model.
"""
import json
import os
from typing import Dict, Optional

import torch
from torch import nn

from .modeling_utils import _stored_tensors, load_state_dict_file, pretrained_weights_file
from .safe_loading import UnreadableCheckpoint
from .trainer_utils import file_sha256

TRAINABLE_WEIGHTS_NAME = "model_trainable.safetensors"
BASE_MODEL_NAME = "base_model.json"


def base_of(model: nn.Module) -> Optional[str]:
    """Where from_pretrained read `model`'s weights (absolute when local), or None when they came from elsewhere."""
    name = getattr(model, "name_or_path", "") or ""
    if not name or not hasattr(model, "aligned_state_dict"):
        return None
    return os.path.abspath(name) if os.path.exists(name) else name


class TrainableCheckpoints:
    """Writes the trainable-only files of `model` into checkpoint folders. The base's weights are read and hashed
    once, at the first save, to find the frozen tensors that must be kept and to fingerprint the base."""

    def __init__(self, model: nn.Module, base: str):
        self.model, self.base = model, base
        self.reference, self.keys = None, None

    def _prepare(self):
        path = pretrained_weights_file(self.base)
        base = self.model.aligned_state_dict(_stored_tensors(path))  # read one tensor at a time, not held whole
        trainable = {name for name, p in self.model.named_parameters() if p.requires_grad}
        self.keys = [k for k, v in self.model.state_dict().items()
                     if k in trainable or k not in base or not _same(v, _read(base[k]))]
        self.reference = {"base_model": self.base, "weights_file": os.path.basename(path),
                          "size": os.path.getsize(path), "sha256": file_sha256(path)}

    def save(self, folder: str):
        from safetensors.torch import save_file

        if self.reference is None:
            self._prepare()
        state = self.model.state_dict()
        # clones: tied tensors would share memory, which safetensors refuses
        save_file({k: state[k].detach().cpu().clone() for k in self.keys},
                  os.path.join(folder, TRAINABLE_WEIGHTS_NAME), metadata={"format": "pt"})
        with open(os.path.join(folder, BASE_MODEL_NAME), "w", encoding="utf-8") as f:
            f.write(json.dumps(self.reference, indent=2) + "\n")
        if hasattr(self.model, "config"):  # what the tensors fit: LoRA rank, adapter size...
            self.model.config.save_pretrained(folder)


def _read(stored) -> torch.Tensor:
    """A tensor of a weights file listed by _stored_tensors (already a tensor when the file is read whole)."""
    if isinstance(stored, torch.Tensor):
        return stored
    out = torch.empty(stored.shape, dtype=stored.dtype)
    stored.copy_to(out)
    return out


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.cpu(), b)


def is_trainable_only(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, BASE_MODEL_NAME))


def rebuild_state_dict(model: nn.Module, folder: str) -> Dict[str, torch.Tensor]:
    """`model`'s full state dict from a trainable-only checkpoint: the base's tensors, the checkpoint's over them."""
    with open(os.path.join(folder, BASE_MODEL_NAME), encoding="utf-8") as f:
        reference = json.load(f)
    base = reference["base_model"]
    try:
        path = pretrained_weights_file(base)
    except OSError as e:
        raise UnreadableCheckpoint(f"{folder} holds only the trained tensors and its base model cannot be read "
                                   f"({e}): make {base} available again") from None
    if os.path.getsize(path) != reference["size"] or file_sha256(path) != reference["sha256"]:
        raise UnreadableCheckpoint(f"{folder} holds only the trained tensors, saved over {path} as it was then; that "
                                   f"file has changed since (sha256 differs): restore that base model to resume")
    full = model.aligned_state_dict(load_state_dict_file(path))
    full = {k: full[k] for k in model.state_dict() if k in full}
    full.update(load_state_dict_file(os.path.join(folder, TRAINABLE_WEIGHTS_NAME)))
    missing = [k for k in model.state_dict() if k not in full]
    if missing:
        raise UnreadableCheckpoint(f"{folder} and its base {base} together lack {len(missing)} tensor(s) of the "
                                   f"model, e.g. {missing[0]}: resume with the model this checkpoint was saved from")
    return full
