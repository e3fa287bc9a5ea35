"""Helpers of the Trainer that are not the loop itself: optimizer parameter groups, gathering across processes,
stitching per-batch predictions into one array, and the closing reports (log_metrics, save_metrics, save_state),
which the Trainer carries as methods. The samplers live in data/samplers.py and are importable from here too, where
4.4.2 kept them."""
import json
import os
from typing import Any, Dict, List

import numpy as np
import torch
from torch import distributed as dist
from torch import nn

from .data.samplers import LengthGroupedSampler, ShardSampler  # noqa: F401  (4.4.2's import path)
from .utils import logging

logger = logging.get_logger("transformers.trainer")  # the Trainer's reports, under the Trainer's logger name


def weight_decay_groups(model: nn.Module, weight_decay: float) -> List[Dict[str, Any]]:
    """The trainable parameters as two optimizer groups: with `weight_decay`, and without it for biases and
    LayerNorm parameters (4.4.2's rule)."""
    no_decay = {
        f"{mod_name}.{p_name}" if mod_name else p_name
        for mod_name, module in model.named_modules()
        if isinstance(module, nn.LayerNorm)
        for p_name, _ in module.named_parameters(recurse=False)
    }
    decay, plain = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (plain if "bias" in name or name in no_decay else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def gather_in_rank_order(obj):
    """Every process's `obj`, as a list in rank order (just [obj] without a process group)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def to_numpy(t):
    """A tensor (or nested tuple/list of them) as numpy; floats go through float32, numpy has no bfloat16."""
    if isinstance(t, (list, tuple)):
        return type(t)(to_numpy(x) for x in t)
    return t.detach().float().cpu().numpy() if t.is_floating_point() else t.detach().cpu().numpy()


def concat_batches(chunks, padding_index=-100):
    """Concatenate per-batch arrays (or tuples of arrays) along dim 0; pad dim 1 with -100 where lengths differ."""
    first = chunks[0]
    if isinstance(first, (list, tuple)):
        return type(first)(concat_batches([c[i] for c in chunks], padding_index) for i in range(len(first)))
    if first.ndim < 2 or all(c.shape[1:] == first.shape[1:] for c in chunks):
        return np.concatenate(chunks, axis=0)
    width = max(c.shape[1] for c in chunks)
    out = np.full((sum(c.shape[0] for c in chunks), width) + first.shape[2:], padding_index, dtype=first.dtype)
    row = 0
    for c in chunks:
        out[row : row + c.shape[0], : c.shape[1]] = c
        row += c.shape[0]
    return out


def batch_rows(inputs: Dict[str, Any]) -> int:
    """Batch size of a collated batch: the first dim of its first non-scalar tensor."""
    for v in inputs.values():
        if isinstance(v, torch.Tensor) and v.dim() > 0:
            return v.shape[0]
    return 1


def _write_json(path: str, obj: Dict[str, Any]):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=4, sort_keys=True)
        f.write("\n")


def log_metrics(trainer, split: str, metrics: Dict[str, Any]):
    """Log `metrics` as a two-column table, floats to 4 significant digits (the json files keep them whole)."""
    if not trainer.is_world_process_zero():
        return
    width = max((len(k) for k in metrics), default=0)
    rows = [f"  {k:<{width}}  {v:.4g}" if isinstance(v, float) else f"  {k:<{width}}  {v}"
            for k, v in sorted(metrics.items())]
    logger.info("\n".join([f"{split} metrics:"] + rows))


def save_metrics(trainer, split: str, metrics: Dict[str, Any], combined: bool = True):
    """Write `{split}_results.json` in output_dir and, if `combined`, merge the metrics into all_results.json."""
    if not trainer.is_world_process_zero():
        return
    folder = trainer.args.output_dir
    os.makedirs(folder, exist_ok=True)
    _write_json(os.path.join(folder, f"{split}_results.json"), metrics)
    if combined:
        path = os.path.join(folder, "all_results.json")
        merged = {}
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                merged = json.load(f)
        _write_json(path, {**merged, **metrics})


def save_state(trainer):
    """Write trainer_state.json (log history, best checkpoint...) in output_dir."""
    if trainer.is_world_process_zero():
        os.makedirs(trainer.args.output_dir, exist_ok=True)
        trainer.state.save_to_json(os.path.join(trainer.args.output_dir, "trainer_state.json"))
