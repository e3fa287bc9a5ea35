"""Trainer: the training / evaluation / prediction loop of transformers 4.4.2, on one device per process.

Multi-process (torchrun): the model is wrapped in DistributedDataParallel, training data is split by 4.4.2's
DistributedSampler (reshuffled each epoch from the epoch number), evaluation data in contiguous shards whose results
are gathered in order, so every example counts exactly once. Process 0 logs and writes; the others wait for it at
each checkpoint.

Step semantics follow 4.4.2: AdamW with bias/LayerNorm parameters excluded from weight decay, a warmup schedule,
gradient accumulation and clipping, and at the end of each optimizer step: log -> evaluate -> save.
Checkpoints (`checkpoint-N/`) hold the model, optimizer.pt, scheduler.pt, trainer_state.json, rng_state.pth and
training_args.bin/.json, plus `pytorch_model_lora.bin` / `model_lora.safetensors` (LoRA + head tensors) when the
model has LoRA layers. Resuming restores all of it and replays the data order, so an interrupted run ends with the
same weights as an uninterrupted one. Every .pt/.pth/.bin holds only tensors and plain values and is read with
torch.load(weights_only=True): a checkpoint from elsewhere cannot run code when resumed.
"""
import contextlib
import inspect
import json
import math
import os
import random
import shutil
import time
from collections.abc import Sized
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from safetensors import SafetensorError
from torch import nn
from torch import distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, IterableDataset, RandomSampler, SequentialSampler, Sampler
from torch.utils.data.distributed import DistributedSampler

from .adapters import ADAPTER_STATE_NAME, SAFE_ADAPTER_STATE_NAME, adapter_state_dict, is_adapter_key
from .data.data_collator import DataCollator, DataCollatorWithPadding, default_data_collator
from .deepspeed_support import deepspeed_init
from .file_utils import LORA_WEIGHTS_NAME, SAFE_LORA_WEIGHTS_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_NAME
from .lora import lora_state_dict
from .lora_interop import ADAPTER_DIR, save_peft_adapter
from .optimization import AdamW, get_scheduler
from .safe_loading import UnreadableCheckpoint, torch_load
from .trainable_checkpoint import TrainableCheckpoints, base_of, is_trainable_only, rebuild_state_dict
from .trainer_callback import (
    CallbackHandler,
    DefaultFlowCallback,
    PrinterCallback,
    ProgressCallback,
    TensorBoardCallback,
    TrainerCallback,
    TrainerControl,
    TrainerState,
)
from .trainer_utils import (
    PREFIX_CHECKPOINT_DIR,
    CheckpointSaveError,
    EvalPrediction,
    NonFiniteLoss,
    PredictionOutput,
    TrainOutput,
    checkpoint_problem,
    denumpify_detensorize,
    get_last_checkpoint,
    set_seed,
    speed_metrics,
    write_checkpoint_manifest,
)
from .training_args import TrainingArguments
from .utils import logging

logger = logging.get_logger(__name__)

TRAINER_STATE_NAME = "trainer_state.json"
OPTIMIZER_NAME = "optimizer.pt"
SCHEDULER_NAME = "scheduler.pt"
SCALER_NAME = "scaler.pt"
RNG_STATE_NAME = "rng_state.pth"
TRAINING_ARGS_NAME = "training_args.bin"
TRAINING_ARGS_JSON = "training_args.json"


class LengthGroupedSampler(Sampler):
    """Random order, but examples of similar length share a batch: shuffle, cut into mega-batches of 50 batches,
    sort each by length (longest first), and put the batch holding the longest example first (early OOM).

    With num_replicas > 1 (4.4.2's distributed variant) the shuffle comes from a generator seeded with the epoch
    (`set_epoch`), the same on every process; the order is padded by wrapping around to a multiple of num_replicas,
    and process `rank` takes every num_replicas-th index from position `rank`."""

    def __init__(self, lengths: List[int], batch_size: int, num_replicas: int = 1, rank: int = 0):
        self.lengths, self.batch_size = lengths, batch_size
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, 0

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return math.ceil(len(self.lengths) / self.num_replicas)

    def __iter__(self):
        generator = None
        if self.num_replicas > 1:
            generator = torch.Generator()
            generator.manual_seed(self.epoch)
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


def _gather_in_rank_order(obj):
    """Every process's `obj`, as a list in rank order (just [obj] without a process group)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def _nested_to_numpy(t):
    # floats go through float32: numpy has no bfloat16
    if isinstance(t, (list, tuple)):
        return type(t)(_nested_to_numpy(x) for x in t)
    return t.detach().float().cpu().numpy() if t.is_floating_point() else t.detach().cpu().numpy()


def _nested_concat(chunks, padding_index=-100):
    """Concatenate per-batch arrays (or tuples of arrays) along dim 0; pad dim 1 with -100 where lengths differ."""
    first = chunks[0]
    if isinstance(first, (list, tuple)):
        return type(first)(_nested_concat([c[i] for c in chunks], padding_index) for i in range(len(first)))
    if first.ndim < 2 or all(c.shape[1:] == first.shape[1:] for c in chunks):
        return np.concatenate(chunks, axis=0)
    width = max(c.shape[1] for c in chunks)
    out = np.full((sum(c.shape[0] for c in chunks), width) + first.shape[2:], padding_index, dtype=first.dtype)
    row = 0
    for c in chunks:
        out[row : row + c.shape[0], : c.shape[1]] = c
        row += c.shape[0]
    return out


def _num_rows(inputs: Dict[str, Any]) -> int:
    """Batch size of a collated batch: the first dim of its first non-scalar tensor."""
    for v in inputs.values():
        if isinstance(v, torch.Tensor) and v.dim() > 0:
            return v.shape[0]
    return 1


class Trainer:
    """Train, evaluate and predict with a model whose forward(**batch) returns the loss first when given labels.

    model / model_init: the model, or a function building it (called again, after seeding, by every train()).
    data_collator: defaults to DataCollatorWithPadding(tokenizer) when a tokenizer is given, else
        default_data_collator. datasets.Dataset columns the model's forward does not take are dropped
        (remove_unused_columns). optimizers: (optimizer, scheduler) to use instead of AdamW + get_scheduler.
    """

    def __init__(
        self,
        model: nn.Module = None,
        args: TrainingArguments = None,
        data_collator: Optional[DataCollator] = None,
        train_dataset: Optional[Dataset] = None,
        eval_dataset: Optional[Dataset] = None,
        tokenizer=None,
        model_init: Callable[[], nn.Module] = None,
        compute_metrics: Optional[Callable[[EvalPrediction], Dict]] = None,
        callbacks: Optional[List[TrainerCallback]] = None,
        optimizers: Tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR] = (None, None),
    ):
        self.args = args if args is not None else TrainingArguments(output_dir="tmp_trainer")
        set_seed(self.args.seed)  # before model_init, so the initial weights are reproducible
        if self.args.use_deterministic_algorithms:
            torch.use_deterministic_algorithms(True)
        if model is None:
            if model_init is None:
                raise RuntimeError("Trainer needs a `model` or a `model_init` function: pass one of them")
            model = model_init()
        self.model_init = model_init
        self.model = model.to(self.args.device)
        self.tokenizer = tokenizer
        if data_collator is None:
            data_collator = DataCollatorWithPadding(tokenizer) if tokenizer is not None else default_data_collator
        self.data_collator = data_collator
        self.train_dataset, self.eval_dataset = train_dataset, eval_dataset
        self.compute_metrics = compute_metrics
        self.optimizer, self.lr_scheduler = optimizers
        if model_init is not None and (self.optimizer is not None or self.lr_scheduler is not None):
            raise RuntimeError("`model_init` rebuilds the model, so it cannot be combined with `optimizers`: "
                               "subclass Trainer and override create_optimizer_and_scheduler instead")
        if self.train_dataset is not None and not isinstance(self.train_dataset, Sized) and self.args.max_steps <= 0:
            raise ValueError("train_dataset has no length, so the number of steps is unknown: set --max_steps")

        self.label_names = self.args.label_names if self.args.label_names is not None else ["labels"]
        if not self.is_world_process_zero():  # one process speaks for all; the others only warn
            logging.set_verbosity_warning()
        self.is_in_train = False
        self._signature_columns = None
        self._num_params = None
        self._past = None
        self._epoch_begin_rng = None
        self.state = TrainerState()
        self.control = TrainerControl()

        # mixed precision: autocast for both; fp16 also needs loss scaling against underflow. Under DeepSpeed
        # the engine casts the model and scales the loss itself.
        self.deepspeed = None  # the engine, built by train() under --deepspeed
        self._trainable_checkpoints = None  # set by train() when checkpoints hold only what trains
        precision = torch.float16 if self.args.fp16 else torch.bfloat16 if self.args.bf16 else None
        self.amp_dtype = None if self.args.deepspeed else precision
        self.scaler = torch.amp.GradScaler("cuda") if self.args.fp16 and not self.args.deepspeed else None

        default = [DefaultFlowCallback] + ([TensorBoardCallback] if "tensorboard" in self.args.report_to else [])
        self.callback_handler = CallbackHandler(
            default + (callbacks or []), self.model, self.tokenizer, self.optimizer, self.lr_scheduler
        )
        self.add_callback(PrinterCallback if self.args.disable_tqdm else ProgressCallback)
        self.control = self.callback_handler.on_init_end(self.args, self.state, self.control)

    # -- callbacks ----------------------------------------------------------------------------------------------
    def add_callback(self, callback):
        self.callback_handler.add_callback(callback)

    def pop_callback(self, callback):
        return self.callback_handler.pop_callback(callback)

    def remove_callback(self, callback):
        self.callback_handler.remove_callback(callback)

    # -- data -----------------------------------------------------------------------------------------------------
    def _remove_unused_columns(self, dataset, description: str):
        """For datasets.Dataset: drop columns that are neither forward() arguments nor a label column."""
        if not self.args.remove_unused_columns or not hasattr(dataset, "column_names"):
            return dataset
        if self._signature_columns is None:
            params = inspect.signature(self.model.forward).parameters
            if any(p.kind == p.VAR_KEYWORD for p in params.values()):
                self._signature_columns = []  # forward(**kwargs) takes anything
            else:
                self._signature_columns = list(params) + ["label", "label_ids"] + self.label_names
        if not self._signature_columns:
            return dataset
        ignored = [c for c in dataset.column_names if c not in self._signature_columns]
        if ignored:
            logger.info(f"The {description} set columns {ignored} are not arguments of "
                        f"{type(self.model).__name__}.forward and have been ignored.")
            dataset = dataset.remove_columns(ignored)
        return dataset

    def _get_train_sampler(self) -> Optional[Sampler]:
        if isinstance(self.train_dataset, IterableDataset) or not isinstance(self.train_dataset, Sized):
            return None
        world, rank = self.args.world_size, self.args.process_index
        if self.args.group_by_length:
            name = self.tokenizer.model_input_names[0] if self.tokenizer is not None else "input_ids"
            if hasattr(self.train_dataset, "column_names"):
                lengths = [len(x) for x in self.train_dataset[name]]
            else:
                lengths = [len(self.train_dataset[i][name]) for i in range(len(self.train_dataset))]
            return LengthGroupedSampler(lengths, self.args.train_batch_size, num_replicas=world, rank=rank)
        if world > 1:
            return DistributedSampler(self.train_dataset, num_replicas=world, rank=rank)
        return RandomSampler(self.train_dataset)

    def get_train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise ValueError("Trainer: training requires a train_dataset")
        dataset = self._remove_unused_columns(self.train_dataset, "training")
        return DataLoader(
            dataset,
            batch_size=self.args.train_batch_size,
            sampler=self._get_train_sampler(),
            collate_fn=self.data_collator,
            drop_last=self.args.dataloader_drop_last,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory and self.args.device.type == "cuda",
        )

    def _eval_loader(self, dataset, description: str) -> DataLoader:
        dataset = self._remove_unused_columns(dataset, description)
        return DataLoader(
            dataset,
            batch_size=self.args.eval_batch_size,
            sampler=self._eval_sampler(dataset),
            collate_fn=self.data_collator,
            drop_last=self.args.dataloader_drop_last,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory and self.args.device.type == "cuda",
        )

    def _eval_sampler(self, dataset) -> Optional[Sampler]:
        if not isinstance(dataset, Sized):
            return None
        if self._shard_evaluation():
            return ShardSampler(len(dataset), self.args.world_size, self.args.process_index)
        return SequentialSampler(dataset)

    def _shard_evaluation(self) -> bool:
        """Each process evaluates its own slice, except under ZeRO-3: there every forward is a collective that all
        processes must join, so each one evaluates the whole set."""
        return self.args.world_size > 1 and not self._zero3()

    def _zero3(self) -> bool:
        return self.deepspeed is not None and self.deepspeed.zero_optimization_stage() == 3

    def get_eval_dataloader(self, eval_dataset: Optional[Dataset] = None) -> DataLoader:
        if eval_dataset is None and self.eval_dataset is None:
            raise ValueError("Trainer: evaluation requires an eval_dataset")
        return self._eval_loader(eval_dataset if eval_dataset is not None else self.eval_dataset, "evaluation")

    def get_test_dataloader(self, test_dataset: Dataset) -> DataLoader:
        return self._eval_loader(test_dataset, "test")

    # -- optimizer ------------------------------------------------------------------------------------------------
    def create_optimizer_and_scheduler(self, num_training_steps: int):
        """AdamW over the trainable parameters (no weight decay on biases and LayerNorm parameters) and the
        args.lr_scheduler_type schedule with warmup_steps, or ceil(warmup_ratio * total) when warmup_steps is 0."""
        if self.optimizer is None:
            self.optimizer = AdamW(
                weight_decay_groups(self.model, self.args.weight_decay),
                lr=self.args.learning_rate,
                betas=(self.args.adam_beta1, self.args.adam_beta2),
                eps=self.args.adam_epsilon,
            )
        if self.lr_scheduler is None:
            self.lr_scheduler = get_scheduler(
                self.args.lr_scheduler_type, self.optimizer,
                num_warmup_steps=self._num_warmup_steps(num_training_steps), num_training_steps=num_training_steps,
            )

    def _num_warmup_steps(self, num_training_steps: int) -> int:
        return self.args.warmup_steps or math.ceil(num_training_steps * self.args.warmup_ratio)

    # -- training ---------------------------------------------------------------------------------------------------
    def train(self, resume_from_checkpoint: Optional[Union[str, bool]] = None, **kwargs) -> TrainOutput:
        """Run training. resume_from_checkpoint: a checkpoint folder, or True for the last one in output_dir."""
        if kwargs:
            raise TypeError(f"train() got unexpected keyword arguments: {', '.join(kwargs)}")
        args = self.args
        self.is_in_train = True
        if self.model_init is not None:
            set_seed(args.seed)
            self.model = self.model_init().to(args.device)
            self.optimizer, self.lr_scheduler = None, None
        self._trainable_checkpoints = self._trainable_only_writer()
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(args.output_dir) if os.path.isdir(args.output_dir) else None
            if resume_from_checkpoint is None:
                raise ValueError(f"No checkpoint-N folder found in output directory ({args.output_dir}) to resume from")
        elif resume_from_checkpoint is False:
            resume_from_checkpoint = None
        if resume_from_checkpoint is not None:
            if not os.path.isdir(resume_from_checkpoint):
                raise ValueError(f"Can't find a checkpoint folder at {resume_from_checkpoint}")
            problem = checkpoint_problem(resume_from_checkpoint)
            if problem is not None:
                raise UnreadableCheckpoint(f"{resume_from_checkpoint} is incomplete or damaged ({problem}): resume "
                                           "from an older checkpoint-N, or pass True to take the newest sound one")
            self._load_model_weights(resume_from_checkpoint)

        train_dataloader = self.get_train_dataloader()
        sized = isinstance(train_dataloader.dataset, Sized)
        ga = args.gradient_accumulation_steps
        if sized:
            updates_per_epoch = max(len(train_dataloader) // ga, 1)
            if args.max_steps > 0:
                max_steps = args.max_steps
                num_train_epochs = math.ceil(max_steps / updates_per_epoch)
            else:
                max_steps = math.ceil(args.num_train_epochs * updates_per_epoch)
                num_train_epochs = math.ceil(args.num_train_epochs)
        else:  # unsized data: one pass of max_steps updates
            max_steps, num_train_epochs, updates_per_epoch = args.max_steps, 1, args.max_steps

        if args.deepspeed:  # the engine owns optimizer, schedule and precision, and checkpoints their state
            self.deepspeed = deepspeed_init(self, max_steps, resume_from_checkpoint)
        else:
            self.create_optimizer_and_scheduler(num_training_steps=max_steps)
            self._load_optimizer_and_scheduler(resume_from_checkpoint)
        self.state = TrainerState()

        total_batch = args.train_batch_size * ga * args.world_size
        num_examples = len(train_dataloader.dataset) if sized else total_batch * max_steps
        logger.info(f"training on {num_examples} examples for {num_train_epochs} epoch(s): {max_steps} optimizer steps "
                    f"of {total_batch} examples ({args.per_device_train_batch_size} per device x {args.world_size} "
                    f"process(es) x {ga} accumulated)")

        epochs_trained, batches_to_skip, rng_state = 0, 0, None
        state_file = os.path.join(resume_from_checkpoint or "", TRAINER_STATE_NAME)
        if resume_from_checkpoint is not None and os.path.isfile(state_file):
            self.state = TrainerState.load_from_json(state_file)
            epochs_trained = self.state.global_step // updates_per_epoch
            if not args.ignore_data_skip:
                batches_to_skip = (self.state.global_step % updates_per_epoch) * ga
                rng_file = os.path.join(resume_from_checkpoint, self._rng_file_name())
                rng_state = self._load_rng_state(rng_file) if os.path.isfile(rng_file) else None
            logger.info(f"resumed {resume_from_checkpoint}: at step {self.state.global_step} (epoch {epochs_trained}), "
                        f"the first {batches_to_skip} batches of this epoch are passed over")

        self.callback_handler.model = self.model
        self.callback_handler.optimizer, self.callback_handler.lr_scheduler = self.optimizer, self.lr_scheduler
        self.callback_handler.train_dataloader = train_dataloader
        self.state.max_steps, self.state.num_train_epochs = max_steps, num_train_epochs
        self.state.is_local_process_zero = self.is_local_process_zero()
        self.state.is_world_process_zero = self.is_world_process_zero()

        tally = self._resumed_loss_tally()
        # tr_loss stays a device tensor between logs to avoid a host sync every step
        tr_loss = self._tr_loss = torch.tensor(tally["unlogged"], device=args.device)
        # the first optimizer step whose loss was nan/inf (-1: none), also on the device; read where the loop syncs
        self._first_bad_step = torch.tensor(-1, device=args.device)
        self._total_loss_scalar = tally["logged_sum"]
        self._overflow_steps = 0
        self._engine_skipped_before = self.deepspeed.skipped_steps if self.deepspeed is not None else 0
        self._globalstep_last_logged = tally["last_logged_step"]
        self._total_flos = self.state.total_flos
        model = self._wrap_model()
        model.zero_grad()
        start_time = time.time()
        self.control = self.callback_handler.on_train_begin(args, self.state, self.control)

        for epoch in range(epochs_trained, num_train_epochs):
            if rng_state is not None:
                if batches_to_skip == 0:  # resuming at an epoch boundary: continue the saved random streams
                    self._set_rng_state(rng_state)
                    rng_state = None
                elif rng_state.get("epoch_begin") is not None:  # mid-epoch: replay this epoch's shuffle first
                    torch.set_rng_state(rng_state["epoch_begin"])
            # the sampler draws its permutation from the torch RNG when iteration starts; checkpoints keep this
            # state so a resumed run can replay the same order
            self._epoch_begin_rng = torch.get_rng_state()
            if hasattr(train_dataloader.sampler, "set_epoch"):  # the distributed samplers reshuffle by epoch
                train_dataloader.sampler.set_epoch(epoch)
            if args.past_index >= 0:
                self._past = None
            steps_in_epoch = len(train_dataloader) if sized else max_steps * ga
            self.control = self.callback_handler.on_epoch_begin(args, self.state, self.control)

            for step, inputs in enumerate(train_dataloader):
                if batches_to_skip > 0:
                    batches_to_skip -= 1
                    if batches_to_skip == 0 and rng_state is not None:
                        self._set_rng_state(rng_state)
                        rng_state = None
                    continue
                if (step + 1) % ga == 0:
                    self.control = self.callback_handler.on_step_begin(args, self.state, self.control)
                # an epoch shorter than one accumulation still ends with an update
                update = (step + 1) % ga == 0 or (steps_in_epoch <= ga and step + 1 == steps_in_epoch)
                if self.deepspeed is not None:  # the engine reduces gradients and steps where this loop says
                    self.deepspeed.set_gradient_accumulation_boundary(update)
                # between updates, DDP need not average gradients: the update's backward averages the sum
                with model.no_sync() if isinstance(model, DistributedDataParallel) and not update else \
                        contextlib.nullcontext():
                    step_loss = self.training_step(model, inputs)
                tr_loss += step_loss
                if not args.fp16:  # under fp16 loss scaling, overflowing steps are skipped by design
                    bad = ~torch.isfinite(step_loss) & (self._first_bad_step < 0)
                    self._first_bad_step = torch.where(bad, self.state.global_step + 1, self._first_bad_step)
                self._total_flos += float(self.floating_point_ops(inputs))

                if update:
                    self._optimizer_step(model)
                    self.state.global_step += 1
                    self.state.epoch = epoch + (step + 1) / steps_in_epoch
                    self.control = self.callback_handler.on_step_end(args, self.state, self.control)
                    self._maybe_log_save_evaluate(tr_loss)
                if self.control.should_epoch_stop or self.control.should_training_stop:
                    break

            self.control = self.callback_handler.on_epoch_end(args, self.state, self.control)
            self._maybe_log_save_evaluate(tr_loss)
            if self.control.should_training_stop:
                break

        self._past = None
        self._stop_on_bad_loss()
        logger.info(f"training finished at step {self.state.global_step}")
        if args.load_best_model_at_end and self.state.best_model_checkpoint is not None:
            logger.info(f"best {args.metric_for_best_model} was {self.state.best_metric} at "
                        f"{self.state.best_model_checkpoint}: its weights are loaded back")
            with self._gathered_weights(modifier_rank=0):  # every process reads the same file
                self._load_model_weights(self.state.best_model_checkpoint)

        metrics = speed_metrics("train", start_time, max_steps * total_batch)
        self.store_flos()
        metrics["total_flos"] = self.state.total_flos
        self._total_loss_scalar += self._mean_over_processes(tr_loss)
        train_loss = self._total_loss_scalar / max(self.state.global_step, 1)
        metrics["train_loss"] = train_loss
        skipped = self._skipped_steps()
        if skipped is not None:
            metrics["train_fp16_skipped_steps"] = skipped
        self.log(metrics)
        self.control = self.callback_handler.on_train_end(args, self.state, self.control)
        self.is_in_train = False
        return TrainOutput(self.state.global_step, train_loss, metrics)

    def _wrap_model(self) -> nn.Module:
        """The module to train: self.model, inside DistributedDataParallel when there are several processes."""
        if self.deepspeed is not None:
            return self.deepspeed
        if self.args.world_size == 1:
            return self.model
        cuda = self.args.device.type == "cuda"
        # Frozen weights (LoRA, adapters, BitFit) get no gradient and are never waited for, so unused-parameter
        # search is needed only by a model that skips trainable parameters in some steps.
        return DistributedDataParallel(self.model, device_ids=[self.args.device.index] if cuda else None,
                                       find_unused_parameters=bool(self.args.ddp_find_unused_parameters))

    def _mean_over_processes(self, value: torch.Tensor) -> float:
        """A per-process scalar averaged over the processes (itself with one process)."""
        if self.args.world_size > 1:
            value = value.detach().clone()
            dist.all_reduce(value)
            value /= self.args.world_size
        return value.item()

    def _barrier(self):
        if self.args.world_size > 1:
            dist.barrier()

    def _optimizer_step(self, model: nn.Module):
        """Clip the global gradient norm, step optimizer and schedule, clear the gradients."""
        if self.deepspeed is not None:  # all of that happens inside the engine
            self.deepspeed.step()
            return
        if self.args.max_grad_norm is not None and self.args.max_grad_norm > 0:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), self.args.max_grad_norm)
        if self.scaler is not None:
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            # the scaler lowers its scale exactly when it found inf/nan gradients and skipped the step
            self._overflow_steps += int(self.scaler.get_scale() < scale)
        else:
            self.optimizer.step()
        self.lr_scheduler.step()
        model.zero_grad()

    def _stop_on_bad_loss(self):
        """Raise NonFiniteLoss if a step's loss was nan/inf: before it is logged, evaluated or saved, so every
        checkpoint on disk predates it."""
        never = torch.iinfo(torch.int64).max
        first = torch.where(self._first_bad_step < 0, never, self._first_bad_step)
        if self.args.world_size > 1:  # every process stops together, at the earliest bad step of any
            dist.all_reduce(first, op=dist.ReduceOp.MIN)
        step = int(first)
        if step == never:
            return
        output_dir = self.args.output_dir
        last = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint was saved"
        raise NonFiniteLoss(f"the training loss is nan or inf at step {step}: training stopped, {kept}; lower "
                            "--learning_rate, or keep gradients clipped (--max_grad_norm 1.0)")

    def _maybe_log_save_evaluate(self, tr_loss: torch.Tensor):
        if self.control.should_log or self.control.should_evaluate or self.control.should_save:
            self._stop_on_bad_loss()
        if self.control.should_log:
            tr_loss_scalar = self._mean_over_processes(tr_loss)
            tr_loss -= tr_loss  # reset in place: the caller keeps accumulating into the same tensor
            steps = self.state.global_step - self._globalstep_last_logged
            logs = {"loss": round(tr_loss_scalar / max(steps, 1), 4), "learning_rate": self.lr_scheduler.get_last_lr()[0]}
            skipped = self._skipped_steps()
            if skipped is not None:
                logs["fp16_skipped_steps"] = skipped
            self._total_loss_scalar += tr_loss_scalar
            self._globalstep_last_logged = self.state.global_step
            self.log(logs)
        metrics = self.evaluate() if self.control.should_evaluate else None
        if self.control.should_save:
            try:
                self._save_checkpoint(metrics=metrics)
            # a full disk: torch.save reports it as a RuntimeError, safetensors as its own error, the rest as OSError
            except (OSError, RuntimeError, SafetensorError) as e:
                raise self._save_failed(e) from e
            self.control = self.callback_handler.on_save(self.args, self.state, self.control)

    def _skipped_steps(self) -> Optional[int]:
        """Optimizer steps skipped for fp16 overflow since this train() began; None when no loss scaling runs."""
        if self.deepspeed is not None:
            return self.deepspeed.skipped_steps - self._engine_skipped_before if self.deepspeed.fp16_enabled() else None
        return self._overflow_steps if self.scaler is not None else None

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.args.device.type, dtype=self.amp_dtype)

    def _prepare_inputs(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
        inputs = {k: v.to(self.args.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        if self.args.past_index >= 0 and self._past is not None:
            inputs["mems"] = self._past
        return inputs

    def training_step(self, model: nn.Module, inputs: Dict[str, Any]) -> torch.Tensor:
        """Forward + backward on one batch; returns the detached loss divided by gradient_accumulation_steps."""
        model.train()
        inputs = self._prepare_inputs(inputs)
        with self._autocast():
            loss = self.compute_loss(model, inputs)
        if self.deepspeed is not None:  # the engine divides by the accumulation steps itself
            self.deepspeed.backward(loss)
            return loss.detach() / self.args.gradient_accumulation_steps
        if self.args.gradient_accumulation_steps > 1:
            loss = loss / self.args.gradient_accumulation_steps
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        return loss.detach()

    def compute_loss(self, model: nn.Module, inputs: Dict[str, Any], return_outputs: bool = False):
        """The model's own loss: outputs['loss'] for dict-like outputs, else outputs[0]."""
        outputs = model(**inputs)
        if self.args.past_index >= 0:
            self._past = outputs[self.args.past_index]
        if isinstance(outputs, dict):
            if "loss" not in outputs:
                raise ValueError(f"{type(model).__name__} returned no loss (keys: {list(outputs.keys())}): the batch "
                                 f"needs labels under one of {self.label_names} (datasets may call it 'label')")
            loss = outputs["loss"]
        else:
            loss = outputs[0]
        return (loss, outputs) if return_outputs else loss

    def floating_point_ops(self, inputs: Dict[str, Any]) -> int:
        """Forward+backward FLOPs of a batch: the model's own estimate if it has one, else 4.4.2's
        6 * (elements of the `*input*` tensors) * (all model parameters)."""
        if hasattr(self.model, "floating_point_ops"):
            return self.model.floating_point_ops(inputs)
        tokens = sum(v.numel() for k, v in inputs.items() if "input" in k and isinstance(v, torch.Tensor))
        if self._num_params is None:
            self._num_params = sum(getattr(p, "ds_numel", p.numel()) for p in self.model.parameters())  # ZeRO-3: sliced
        return 6 * tokens * self._num_params

    # -- logging --------------------------------------------------------------------------------------------------
    def log(self, logs: Dict[str, float]) -> None:
        """Add `epoch` and `step`, append to state.log_history and hand to the callbacks (TensorBoard, tqdm...)."""
        if self.state.epoch is not None:
            logs["epoch"] = round(self.state.epoch, 2)
        self.state.log_history.append({**logs, "step": self.state.global_step})
        self.control = self.callback_handler.on_log(self.args, self.state, self.control, logs)

    def store_flos(self):
        self.state.total_flos = self._total_flos

    def is_local_process_zero(self) -> bool:
        return self.args.local_rank in (-1, 0)

    def is_world_process_zero(self) -> bool:
        return self.args.process_index == 0

    def log_metrics(self, split: str, metrics: Dict[str, Any]):
        """Log `metrics` as a two-column table, floats to 4 significant digits (the json files keep them whole)."""
        if not self.is_world_process_zero():
            return
        width = max((len(k) for k in metrics), default=0)
        rows = [f"  {k:<{width}}  {v:.4g}" if isinstance(v, float) else f"  {k:<{width}}  {v}"
                for k, v in sorted(metrics.items())]
        logger.info("\n".join([f"{split} metrics:"] + rows))

    def save_metrics(self, split: str, metrics: Dict[str, Any], combined: bool = True):
        """Write `{split}_results.json` in output_dir and, if `combined`, merge the metrics into all_results.json."""
        if not self.is_world_process_zero():
            return
        os.makedirs(self.args.output_dir, exist_ok=True)
        _write_json(os.path.join(self.args.output_dir, f"{split}_results.json"), metrics)
        if combined:
            path = os.path.join(self.args.output_dir, "all_results.json")
            merged = {}
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    merged = json.load(f)
            merged.update(metrics)
            _write_json(path, merged)

    def save_state(self):
        """Write trainer_state.json (log history, best checkpoint...) in output_dir."""
        if self.is_world_process_zero():
            os.makedirs(self.args.output_dir, exist_ok=True)
            self.state.save_to_json(os.path.join(self.args.output_dir, TRAINER_STATE_NAME))

    # -- saving / loading -----------------------------------------------------------------------------------------
    def save_model(self, output_dir: Optional[str] = None):
        """Save what `save_model_files` writes (the model, its LoRA / adapter + head tensors, the tokenizer) plus
        training_args.bin, in output_dir (default args.output_dir). Every process calls it; process 0 writes."""
        with self._gathered_weights():
            if not self.is_world_process_zero():
                return
            output_dir = output_dir if output_dir is not None else self.args.output_dir
            logger.info(f"Saving model checkpoint to {output_dir}")
            save_model_files(self.model, output_dir, self.tokenizer)
            self._save_training_args(output_dir)

    def _save_training_args(self, output_dir: str):
        # plain values only: torch.load(weights_only=True) reads the .bin, anything reads the .json
        torch.save(self.args.to_dict(), os.path.join(output_dir, TRAINING_ARGS_NAME))
        with open(os.path.join(output_dir, TRAINING_ARGS_JSON), "w", encoding="utf-8") as f:
            f.write(self.args.to_json_string() + "\n")

    def _trainable_only_writer(self) -> Optional[TrainableCheckpoints]:
        """What writes checkpoints of the trainable tensors only (see TrainingArguments.save_trainable_only), or
        None when checkpoints hold the whole model."""
        wanted, base = self.args.save_trainable_only, base_of(self.model)
        if wanted is None:  # on when something is frozen and from_pretrained says where it came from
            wanted = base is not None and not self.args.deepspeed and not all(
                p.requires_grad for p in self.model.parameters())
        if not wanted:
            return None
        if base is None:
            raise ValueError("save_trainable_only needs a model loaded with from_pretrained: its checkpoints take "
                             "the frozen tensors from those weights; load it so, or pass --save_trainable_only false")
        trained = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        logger.info(f"checkpoints hold the {trained:,} trainable parameters and a reference to {base} "
                    "(--save_trainable_only false: whole models)")
        return TrainableCheckpoints(self.model, base)

    def _gathered_weights(self, modifier_rank: Optional[int] = None):
        """Under ZeRO-3 each process holds a slice of every weight: this block sees them whole (every process must
        enter it; with modifier_rank, that process's changes are kept). A no-op otherwise."""
        if not self._zero3():
            return contextlib.nullcontext()
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(self.model.parameters()), modifier_rank=modifier_rank)

    def _save_checkpoint(self, metrics: Optional[Dict[str, float]] = None):
        """Write checkpoint-N (into a temporary folder renamed at the end: a crash leaves no half checkpoint).

        Every process calls this: each stores its own random state, process 0 everything else, and nobody goes on
        before the folder has its final name."""
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        final = os.path.join(self.args.output_dir, name)
        tmp = os.path.join(self.args.output_dir, f"tmp-{name}")
        zero = self.is_world_process_zero()
        if zero:
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
        self._barrier()
        torch.save(self._get_rng_state(), os.path.join(tmp, self._rng_file_name()))
        self._update_best(metrics, final)
        self.store_flos()
        tally = {"logged_sum": self._total_loss_scalar, "last_logged_step": self._globalstep_last_logged,
                 "unlogged": _gather_in_rank_order(self._tr_loss.item())}
        if self.deepspeed is not None:  # each process writes its share of the optimizer state, with the schedule
            self.deepspeed.save_checkpoint(tmp)
        if self._trainable_checkpoints is None:
            self.save_model(tmp)
        elif zero:
            self._trainable_checkpoints.save(tmp)
            save_model_files(self.model, tmp, self.tokenizer, whole_model=False)
            self._save_training_args(tmp)
        if zero:
            if self.deepspeed is None:
                torch.save(self.optimizer.state_dict(), os.path.join(tmp, OPTIMIZER_NAME))
                torch.save(self.lr_scheduler.state_dict(), os.path.join(tmp, SCHEDULER_NAME))
            if self.scaler is not None:
                torch.save(self.scaler.state_dict(), os.path.join(tmp, SCALER_NAME))
            replace(self.state, loss_tally=tally).save_to_json(os.path.join(tmp, TRAINER_STATE_NAME))
        self._barrier()  # every process's random state is in tmp
        if zero:
            write_checkpoint_manifest(tmp)  # last: a folder whose files match it was saved whole
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            self._rotate_checkpoints()
        self._barrier()

    def _save_failed(self, error: Exception) -> CheckpointSaveError:
        """Remove the half-written folder of a save that failed and say which checkpoint is left to resume from."""
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        if self.is_world_process_zero():
            shutil.rmtree(os.path.join(self.args.output_dir, f"tmp-{name}"), ignore_errors=True)
        last = get_last_checkpoint(self.args.output_dir)
        kept = f"{last} is intact" if last else "no earlier checkpoint was saved"
        cause = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        return CheckpointSaveError(f"could not write {name} ({cause}): nothing of it was kept and {kept}; make room "
                                   "on the disk and run the same command again to resume")

    def _resumed_loss_tally(self) -> Dict[str, Any]:
        """The loss sums to start from: the resumed checkpoint's (this process's share), else none yet."""
        tally, self.state.loss_tally = self.state.loss_tally, None
        if tally is None or len(tally["unlogged"]) != self.args.world_size:  # a fresh run, or another world size
            return {"logged_sum": 0.0, "last_logged_step": self.state.global_step, "unlogged": 0.0}
        return {**tally, "unlogged": tally["unlogged"][self.args.process_index]}

    def _rng_file_name(self) -> str:
        world = self.args.world_size
        return RNG_STATE_NAME if world == 1 else f"rng_state_{self.args.process_index}.pth"

    def _update_best(self, metrics: Optional[Dict[str, float]], checkpoint: str):
        """Remember `checkpoint` as the best one if its metrics beat the best so far (on every process, so that
        load_best_model_at_end loads the same weights everywhere)."""
        if metrics is not None and self.args.metric_for_best_model is not None:
            key = self.args.metric_for_best_model
            key = key if key.startswith("eval_") else f"eval_{key}"
            if key not in metrics:
                raise KeyError(f"metric_for_best_model={self.args.metric_for_best_model!r} is not among the eval "
                               f"metrics {sorted(metrics)}: pick one of those")
            value = metrics[key]
            better = np.greater if self.args.greater_is_better else np.less
            if self.state.best_metric is None or better(value, self.state.best_metric):
                self.state.best_metric = value
                self.state.best_model_checkpoint = checkpoint

    def _sorted_checkpoints(self) -> List[str]:
        folder = self.args.output_dir
        found = [(int(n.split("-")[1]), os.path.join(folder, n)) for n in os.listdir(folder)
                 if n.startswith(f"{PREFIX_CHECKPOINT_DIR}-") and n.split("-")[1].isdigit()
                 and os.path.isdir(os.path.join(folder, n))]
        return [path for _, path in sorted(found)]

    def _rotate_checkpoints(self):
        """Keep at most save_total_limit checkpoints: delete the oldest, but never the best one nor the newest
        (needed to resume), so with a limit of 1 both may remain."""
        limit = self.args.save_total_limit
        if limit is None or limit <= 0:
            return
        ckpts = self._sorted_checkpoints()
        best = self.state.best_model_checkpoint
        keep = {ckpts[-1]} | ({os.path.normpath(best)} if best else set())
        deletable = [c for c in ckpts if os.path.normpath(c) not in keep]
        for ckpt in deletable[: max(0, len(ckpts) - max(limit, len(keep)))]:
            logger.info(f"removing {ckpt} (save_total_limit={limit})")
            shutil.rmtree(ckpt)

    def _load_model_weights(self, folder: str):
        """Load a saved model's weights into self.model in place (keeps its requires_grad flags and LoRA setup)."""
        from .modeling_utils import load_state_dict_file

        if is_trainable_only(folder):
            logger.info(f"Rebuilding the model from its base model and the trained tensors of {folder}")
            self.model.load_state_dict(rebuild_state_dict(self.model, folder))
            return
        for name in (SAFE_WEIGHTS_NAME, WEIGHTS_NAME):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                logger.info(f"Loading model weights from {path}")
                self.model.load_state_dict(load_state_dict_file(path))
                return
        raise ValueError(f"{folder} holds neither {SAFE_WEIGHTS_NAME} nor {WEIGHTS_NAME}: pass a checkpoint folder "
                         "written by Trainer")

    def _load_optimizer_and_scheduler(self, checkpoint: Optional[str]):
        if checkpoint is None:
            return
        opt, sched = os.path.join(checkpoint, OPTIMIZER_NAME), os.path.join(checkpoint, SCHEDULER_NAME)
        if os.path.isfile(opt) and os.path.isfile(sched):
            self.optimizer.load_state_dict(torch_load(opt, map_location=self.args.device))
            self.lr_scheduler.load_state_dict(torch_load(sched))
        scaler = os.path.join(checkpoint, SCALER_NAME)
        if self.scaler is not None and os.path.isfile(scaler):
            self.scaler.load_state_dict(torch_load(scaler))

    def _get_rng_state(self) -> Dict[str, Any]:
        """Every random stream as tensors and plain numbers, which torch.load(weights_only=True) reads back."""
        version, words, gauss = random.getstate()
        _, keys, pos, has_gauss, cached = np.random.get_state()
        state = {
            "python": {"version": version, "state": torch.tensor(words, dtype=torch.int64), "gauss": gauss},
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                      "cached_gaussian": float(cached)},
            "cpu": torch.get_rng_state(),
            "epoch_begin": self._epoch_begin_rng,
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    @staticmethod
    def _load_rng_state(path: str) -> Dict[str, Any]:
        try:
            return torch_load(path)
        except UnreadableCheckpoint as e:
            raise UnreadableCheckpoint(f"{e} (delete it to resume without the saved random state)") from None

    @staticmethod
    def _set_rng_state(state: Dict[str, Any]):
        py, npy = state["python"], state["numpy"]
        random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
        np.random.set_state(("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                             npy["cached_gaussian"]))
        torch.set_rng_state(state["cpu"])
        if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])

    # -- evaluation / prediction ------------------------------------------------------------------------------------
    def evaluate(self, eval_dataset: Optional[Dataset] = None, ignore_keys: Optional[List[str]] = None,
                 metric_key_prefix: str = "eval") -> Dict[str, float]:
        """Loss (and compute_metrics results) on the eval set, keys prefixed `{metric_key_prefix}_`; also logged."""
        dataloader = self.get_eval_dataloader(eval_dataset)
        start_time = time.time()
        # without compute_metrics only the loss is reported, so skip gathering logits
        output = self.prediction_loop(
            dataloader, "Evaluation", prediction_loss_only=True if self.compute_metrics is None else None,
            ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix,
        )
        output.metrics.update(speed_metrics(metric_key_prefix, start_time, len(dataloader.dataset)))
        self.log(output.metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, output.metrics)
        return output.metrics

    def predict(self, test_dataset: Dataset, ignore_keys: Optional[List[str]] = None,
                metric_key_prefix: str = "eval") -> PredictionOutput:
        """Predictions (logits), label_ids (if the data has labels) and metrics for `test_dataset`."""
        dataloader = self.get_test_dataloader(test_dataset)
        start_time = time.time()
        output = self.prediction_loop(dataloader, "Prediction", ignore_keys=ignore_keys,
                                      metric_key_prefix=metric_key_prefix)
        output.metrics.update(speed_metrics(metric_key_prefix, start_time, len(dataloader.dataset)))
        return output

    def prediction_loop(self, dataloader: DataLoader, description: str, prediction_loss_only: Optional[bool] = None,
                        ignore_keys: Optional[List[str]] = None, metric_key_prefix: str = "eval") -> PredictionOutput:
        if prediction_loss_only is None:
            prediction_loss_only = self.args.prediction_loss_only
        logger.info(f"{description.lower()}: {len(dataloader.dataset)} examples in batches of {dataloader.batch_size}")
        model = self.deepspeed if self.deepspeed is not None else self.model  # ZeRO-3 gathers weights in forward
        model.eval()
        self.callback_handler.eval_dataloader = dataloader
        if self.args.past_index >= 0:
            self._past = None
        loss_sum, n_seen, preds, labels = 0.0, 0, [], []
        for inputs in dataloader:  # this process's shard when there are several
            n = _num_rows(inputs)
            loss, logits, label = self.prediction_step(model, inputs, prediction_loss_only, ignore_keys)
            if loss is not None:  # weight by batch size: the mean over examples, as 4.4.2
                loss_sum += loss.item() * n
                n_seen += n
            if logits is not None:
                preds.append(_nested_to_numpy(logits))
            if label is not None:
                labels.append(_nested_to_numpy(label))
            self.control = self.callback_handler.on_prediction_step(self.args, self.state, self.control)
        self._past = None
        if self._shard_evaluation():  # every process gets all shards, in dataset order
            shards = _gather_in_rank_order((loss_sum, n_seen, preds, labels))
            loss_sum, n_seen = sum(s[0] for s in shards), sum(s[1] for s in shards)
            preds, labels = [p for s in shards for p in s[2]], [lab for s in shards for lab in s[3]]

        preds = _nested_concat(preds) if preds else None
        label_ids = _nested_concat(labels) if labels and not prediction_loss_only else None
        if self.compute_metrics is not None and preds is not None and label_ids is not None:
            metrics = denumpify_detensorize(self.compute_metrics(EvalPrediction(predictions=preds, label_ids=label_ids)))
        else:
            metrics = {}
        if n_seen:
            metrics["loss"] = loss_sum / n_seen
        prefix = f"{metric_key_prefix}_"
        metrics = {k if k.startswith(prefix) else prefix + k: v for k, v in metrics.items()}
        return PredictionOutput(predictions=preds, label_ids=label_ids, metrics=metrics)

    def prediction_step(self, model: nn.Module, inputs: Dict[str, Any], prediction_loss_only: bool,
                        ignore_keys: Optional[List[str]] = None):
        """(loss or None, logits or None, labels or None) for one batch, without gradients."""
        has_labels = all(inputs.get(k) is not None for k in self.label_names)
        inputs = self._prepare_inputs(inputs)
        if ignore_keys is None:
            ignore_keys = list(getattr(getattr(self.model, "config", None), "keys_to_ignore_at_inference", []) or [])
        labels = None
        if has_labels:
            labels = tuple(inputs[k].detach() for k in self.label_names)
            labels = labels[0] if len(labels) == 1 else labels
        # evaluation runs in full precision unless asked to use the training's (--fp16_full_eval)
        with torch.no_grad(), self._autocast() if self.args.fp16_full_eval else contextlib.nullcontext():
            if has_labels:
                loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
                loss = loss.mean().detach()
                skip = set(ignore_keys) | {"loss"}
                logits = tuple(v for k, v in outputs.items() if k not in skip) if isinstance(outputs, dict) else outputs[1:]
            else:
                loss = None
                outputs = model(**inputs)
                logits = tuple(v for k, v in outputs.items() if k not in ignore_keys) if isinstance(outputs, dict) else outputs
                if self.args.past_index >= 0:
                    self._past = outputs[self.args.past_index - 1]
        if prediction_loss_only:
            return loss, None, None
        logits = tuple(v.detach() if isinstance(v, torch.Tensor) else v for v in logits)
        return loss, (logits[0] if len(logits) == 1 else logits), labels


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


def save_model_files(model: nn.Module, output_dir: str, tokenizer=None, whole_model: bool = True):
    """Write a model as every save of this package does: save_pretrained (a bare state dict for plain
    modules), the LoRA + head tensors when it has LoRA layers (pytorch_model_lora.bin, its safetensors twin and
    a PEFT adapter folder), the adapter + head tensors when it has adapters, and the tokenizer. Also used by
    scripts that train without a Trainer (run_glue_no_trainer.py). `whole_model=False` leaves out the first
    (trainable-only checkpoints): the LoRA/adapter files stay, as users pick warm starts from checkpoints."""
    os.makedirs(output_dir, exist_ok=True)
    if whole_model and hasattr(model, "save_pretrained"):
        model.save_pretrained(output_dir)
    elif whole_model:
        torch.save(model.state_dict(), os.path.join(output_dir, WEIGHTS_NAME))
    if any("lora_" in name for name, _ in model.named_parameters()):
        from safetensors.torch import save_file

        lora = {k: v.contiguous() for k, v in lora_state_dict(model).items()}
        torch.save(lora, os.path.join(output_dir, LORA_WEIGHTS_NAME))
        save_file(lora, os.path.join(output_dir, SAFE_LORA_WEIGHTS_NAME), metadata={"format": "pt"})
        save_peft_adapter(model, os.path.join(output_dir, ADAPTER_DIR), state_dict=lora)  # for PEFT users
    if any(is_adapter_key(name) for name, _ in model.named_parameters()):
        from safetensors.torch import save_file

        adapters = {k: v.contiguous() for k, v in adapter_state_dict(model).items()}
        torch.save(adapters, os.path.join(output_dir, ADAPTER_STATE_NAME))  # --adapter_path reads it back
        save_file(adapters, os.path.join(output_dir, SAFE_ADAPTER_STATE_NAME), metadata={"format": "pt"})
    if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
        tokenizer.save_pretrained(output_dir)


def _write_json(path: str, obj: Dict[str, Any]):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=4, sort_keys=True)
        f.write("\n")
