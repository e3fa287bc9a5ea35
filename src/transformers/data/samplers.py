"""The orders in which the Trainer reads its data.

Training, as 4.4.2 did it: one process shuffles with RandomSampler (from the torch RNG, so --seed sets the order);
several processes use DistributedSampler, reshuffled from the epoch number alone; --group_by_length uses
LengthGroupedSampler. Evaluation: one process reads in order, several read contiguous shards (ShardSampler) that the
Trainer gathers back in rank order.

With --data_seed, the order depends on (data_seed, epoch) only, on any number of processes: one permutation
(randperm on a generator seeded with data_seed + epoch, as DistributedSampler draws it) is cut into consecutive
global batches of per-device batch x processes x accumulation rows, and process r of k reads rows r, r + k, ... of
it. Optimizer step t then sees the same rows for every k x accumulation of the same product, so one GPU with
accumulation 8 trains on the batches of the fork's 8-GPU launch (--data_seed 0: DistributedSampler's default seed).
"""
import math
from collections.abc import Sized
from typing import List, Optional

import torch
from torch.utils.data import IterableDataset, RandomSampler, Sampler, SequentialSampler
from torch.utils.data.distributed import DistributedSampler


class LengthGroupedSampler(Sampler):
    """Random order, but examples of similar length share a batch: shuffle, cut into mega-batches of 50 batches,
    sort each by length (longest first), and put the batch holding the longest example first (early OOM).

    With num_replicas > 1 (4.4.2's distributed variant) the shuffle comes from a generator seeded with the epoch
    (`set_epoch`), the same on every process; the order is padded by wrapping around to a multiple of num_replicas,
    and process `rank` takes every num_replicas-th index from position `rank`. A `seed` (--data_seed) seeds that
    generator with seed + epoch on any number of processes, one included."""

    def __init__(self, lengths: List[int], batch_size: int, num_replicas: int = 1, rank: int = 0,
                 seed: Optional[int] = None):
        self.lengths, self.batch_size = lengths, batch_size
        self.num_replicas, self.rank, self.epoch, self.seed = num_replicas, rank, 0, seed

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return math.ceil(len(self.lengths) / self.num_replicas)

    def __iter__(self):
        generator = None
        if self.num_replicas > 1 or self.seed is not None:
            generator = torch.Generator()
            generator.manual_seed((self.seed or 0) + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        mega = self.batch_size * 50
        groups = [sorted(order[i : i + mega], key=lambda j: -self.lengths[j]) for i in range(0, len(order), mega)]
        longest = max(range(len(groups)), key=lambda g: self.lengths[groups[g][0]])
        groups[0][0], groups[longest][0] = groups[longest][0], groups[0][0]
        order = [i for g in groups for i in g]
        if self.num_replicas > 1:
            total = len(self) * self.num_replicas
            order = (order * math.ceil(total / len(order)))[:total][self.rank :: self.num_replicas]
        return iter(order)


class ShardSampler(Sampler):
    """Evaluation split for process `rank` of `num_replicas`: a contiguous block of indices, the blocks in rank
    order covering the dataset once (no padding: the last blocks may be shorter, or empty)."""

    def __init__(self, num_examples: int, num_replicas: int, rank: int):
        per_rank = math.ceil(num_examples / num_replicas)
        self.indices = range(min(rank * per_rank, num_examples), min((rank + 1) * per_rank, num_examples))

    def __len__(self):
        return len(self.indices)

    def __iter__(self):
        return iter(self.indices)


def _lengths(dataset, column: str) -> List[int]:
    if hasattr(dataset, "column_names"):  # datasets.Dataset: one column read, not every row
        return [len(x) for x in dataset[column]]
    return [len(dataset[i][column]) for i in range(len(dataset))]


def train_sampler(dataset, args, length_column: str = "input_ids") -> Optional[Sampler]:
    """The training order for this process under `args` (TrainingArguments), or None for unsized data."""
    if isinstance(dataset, IterableDataset) or not isinstance(dataset, Sized):
        return None
    world, rank, data_seed = args.world_size, args.process_index, getattr(args, "data_seed", None)
    if args.group_by_length:
        return LengthGroupedSampler(_lengths(dataset, length_column), args.train_batch_size, world, rank, data_seed)
    if data_seed is not None:  # DistributedSampler with one replica too: the order of k processes, read by one
        return DistributedSampler(dataset, num_replicas=world, rank=rank, seed=data_seed)
    if world > 1:
        return DistributedSampler(dataset, num_replicas=world, rank=rank)
    return RandomSampler(dataset)


def eval_sampler(dataset, num_replicas: int, rank: int) -> Optional[Sampler]:
    """Evaluation order: the whole set in order, or this process's contiguous shard when `num_replicas` > 1."""
    if not isinstance(dataset, Sized):
        return None
    if num_replicas > 1:
        return ShardSampler(len(dataset), num_replicas, rank)
    return SequentialSampler(dataset)
