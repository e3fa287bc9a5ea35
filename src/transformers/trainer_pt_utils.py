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

from torch.utils.data.distributed import DistributedSampler

from .data import samplers
from .data.samplers import ShardSampler  # noqa: F401
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
    """A tensor (or nested tuple/list of them) as numpy; half floats become float32 (numpy has no bfloat16), float64
    stays float64 (as 4.4.2 returned float64 labels)."""
    if isinstance(t, (list, tuple)):
        return type(t)(to_numpy(x) for x in t)
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t.detach().cpu().numpy()


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


# -- 4.4.2's public helpers, under its names and signatures -------------------------------------------------------
def get_parameter_names(model: nn.Module, forbidden_layer_types) -> List[str]:
    """Names of the parameters of `model` that do not sit inside a module of one of `forbidden_layer_types`
    (sub-modules first, in registration order, then the module's own parameters)."""
    forbidden = tuple(forbidden_layer_types)
    names = []
    for child_name, child in model.named_children():
        if not isinstance(child, forbidden):
            names += [f"{child_name}.{n}" for n in get_parameter_names(child, forbidden)]
    return names + list(model._parameters.keys())


class LabelSmoother:
    """Cross-entropy against labels smoothed by `epsilon` (1 - epsilon on the label, epsilon spread evenly over all
    classes); positions labelled `ignore_index` do not count."""

    def __init__(self, epsilon: float = 0.1, ignore_index: int = -100):
        self.epsilon, self.ignore_index = epsilon, ignore_index

    def __call__(self, model_output, labels):
        logits = model_output["logits"] if isinstance(model_output, dict) else model_output[0]
        neg_log_probs = -torch.nn.functional.log_softmax(logits, dim=-1)
        if labels.dim() == neg_log_probs.dim() - 1:
            labels = labels.unsqueeze(-1)
        ignored = labels.eq(self.ignore_index)
        nll = neg_log_probs.gather(dim=-1, index=labels.clamp(min=0)).masked_fill(ignored, 0.0)
        uniform = neg_log_probs.sum(dim=-1, keepdim=True).masked_fill(ignored, 0.0)
        active = ignored.numel() - ignored.long().sum()
        nll = nll.sum() / active
        uniform = uniform.sum() / (active * neg_log_probs.shape[-1])
        return (1 - self.epsilon) * nll + self.epsilon * uniform


def _lengths_of(dataset, model_input_name):
    name = model_input_name or "input_ids"
    first = dataset[0]
    if not isinstance(first, dict) or name not in first:
        raise ValueError(f"cannot tell the lengths of the examples: pass lengths=... or a dataset of dicts with "
                         f"'{name}'")
    return samplers._lengths(dataset, name)


def _replicas(num_replicas, rank):
    """(num_replicas, rank) as given, the missing ones from the initialized process group."""
    if num_replicas is None or rank is None:
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("num_replicas and rank are needed when torch.distributed is not initialized")
        num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
        rank = dist.get_rank() if rank is None else rank
    return num_replicas, rank


class LengthGroupedSampler(samplers.LengthGroupedSampler):
    """4.4.2's signature (dataset, batch_size, lengths=None, model_input_name=None) over data/samplers.py's sampler."""

    def __init__(self, dataset, batch_size: int, lengths=None, model_input_name=None):
        super().__init__(lengths if lengths is not None else _lengths_of(dataset, model_input_name), batch_size)


class DistributedLengthGroupedSampler(samplers.LengthGroupedSampler):
    """Length-grouped order for process `rank` of `num_replicas`, shuffled from seed + epoch; the order wraps
    around to a multiple of num_replicas (or is cut down to one, with drop_last)."""

    def __init__(self, dataset, batch_size: int, num_replicas=None, rank=None, seed: int = 0, drop_last=False,
                 lengths=None, model_input_name=None):
        num_replicas, rank = _replicas(num_replicas, rank)
        lengths = lengths if lengths is not None else _lengths_of(dataset, model_input_name)
        self.drop_last = drop_last
        super().__init__(lengths, batch_size, num_replicas, rank, seed)

    def __len__(self):
        if self.drop_last:
            return len(self.lengths) // self.num_replicas
        return super().__len__()

    def __iter__(self):
        order = list(super().__iter__())
        return iter(order[:len(self)])


class DistributedSamplerWithLoop(DistributedSampler):
    """DistributedSampler whose shard is extended, by looping over its start, to a multiple of batch_size (so that
    every batch is full)."""

    def __init__(self, dataset, batch_size: int, **kwargs):
        super().__init__(dataset, **kwargs)
        self.batch_size = batch_size

    def __iter__(self):
        indices = list(super().__iter__())
        missing = -len(indices) % self.batch_size
        # the shards that got one index less than the others before padding start one later
        start = 1 if self.rank < len(self.dataset) % self.num_replicas else 0
        looped = (indices * (1 + (start + missing) // max(len(indices), 1)))[start:start + missing]
        return iter(indices + looped)


class SequentialDistributedSampler(torch.utils.data.Sampler):
    """In-order evaluation shards: process `rank` reads a contiguous block; the dataset is padded by wrapping
    around so that every block has the same size (a multiple of batch_size when given)."""

    def __init__(self, dataset, num_replicas=None, rank=None, batch_size=None):
        num_replicas, rank = _replicas(num_replicas, rank)
        self.dataset, self.num_replicas, self.rank, self.batch_size = dataset, num_replicas, rank, batch_size
        per_rank = -(-len(dataset) // num_replicas)
        if batch_size is not None:
            per_rank = -(-per_rank // batch_size) * batch_size
        self.num_samples, self.total_size = per_rank, per_rank * num_replicas

    def __iter__(self):
        n = len(self.dataset)
        indices = [i % n for i in range(self.total_size)]
        return iter(indices[self.rank * self.num_samples:(self.rank + 1) * self.num_samples])

    def __len__(self):
        return self.num_samples


class DistributedTensorGatherer:
    """Reassembles predictions gathered batch by batch from `world_size` processes that each read a contiguous
    block (SequentialDistributedSampler): every added array holds world_size equal chunks, one per process, which
    go to that process's block; `finalize()` returns the first num_samples rows. Nested lists/tuples keep their
    structure; rows of another length are padded with padding_index."""

    def __init__(self, world_size: int, num_samples: int, make_multiple_of=None, padding_index: int = -100):
        self.world_size, self.num_samples, self.padding_index = world_size, num_samples, padding_index
        total = -(-num_samples // world_size) * world_size
        if make_multiple_of is not None:
            step = make_multiple_of * world_size
            total = -(-total // step) * step
        self.total_samples, self.process_length = total, total // world_size
        self._storage, self._offsets = None, None

    def add_arrays(self, arrays):
        if arrays is None:
            return
        if self._storage is None:
            self._storage = self._allocate(arrays)
            self._offsets = list(range(0, self.total_samples, self.process_length))
        self._storage, chunk = self._place(self._storage, arrays)
        self._offsets = [o + chunk for o in self._offsets]

    def _allocate(self, arrays):
        if isinstance(arrays, (list, tuple)):
            return type(arrays)(self._allocate(a) for a in arrays)
        arrays = np.asarray(arrays)
        return np.full((self.total_samples,) + arrays.shape[1:], self.padding_index, dtype=arrays.dtype)

    def _place(self, storage, arrays):
        if isinstance(arrays, (list, tuple)):
            placed = [self._place(s, a) for s, a in zip(storage, arrays)]
            return type(arrays)(p[0] for p in placed), placed[0][1]
        arrays = np.asarray(arrays)
        if arrays.ndim > 1 and storage.shape[1] < arrays.shape[1]:
            wider = np.full(storage.shape[:1] + arrays.shape[1:], self.padding_index, dtype=storage.dtype)
            wider[:, :storage.shape[1]] = storage
            storage = wider
        chunk = arrays.shape[0] // self.world_size
        for i, offset in enumerate(self._offsets):
            part = arrays[i * chunk:(i + 1) * chunk]
            if arrays.ndim > 1:
                storage[offset:offset + chunk, :part.shape[1]] = part
            else:
                storage[offset:offset + chunk] = part
        return storage, chunk

    def finalize(self):
        if self._storage is None:
            return None
        if self._offsets[0] != self.process_length:
            logger.warning("not every sample was gathered: the last predictions may be padding")
        return _nested_cut(self._storage, self.num_samples)


def _nested_cut(storage, n):
    if isinstance(storage, (list, tuple)):
        return type(storage)(_nested_cut(s, n) for s in storage)
    return storage[:n]
