"""Trainer: the training / evaluation / prediction loop of transformers 4.4.2, on one device per process.

Step semantics follow 4.4.2: AdamW with bias/LayerNorm parameters excluded from weight decay, a warmup schedule,
gradient accumulation and clipping, and at the end of each optimizer step: log -> evaluate -> save. With the same
seed a run reproduces 4.4.2's step for step (data order, dropout draws, losses).

Multi-process (torchrun): the model is wrapped in DistributedDataParallel (or a DeepSpeed engine), each process
reads its share of the training data (data/samplers.py) and a contiguous shard of the evaluation data, whose results
are gathered in order so every example counts exactly once. Process 0 logs and writes.

What a checkpoint holds and how a run resumes from one is checkpointing.py's business; this file decides when.
"""
import contextlib
import inspect
import math
import os
import time
from collections.abc import Sized
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from safetensors import SafetensorError
from torch import nn
from torch import distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler

from . import checkpointing as ckpt
from . import trainer_pt_utils
from .checkpointing import OPTIMIZER_NAME, SCALER_NAME, SCHEDULER_NAME, TRAINING_ARGS_NAME  # noqa: F401 (4.4.2's)
from .checkpointing import TRAINER_STATE_NAME, save_model_files
from .data.data_collator import DataCollator, DataCollatorWithPadding, default_data_collator
from .data.samplers import eval_sampler, train_sampler
from .deepspeed_support import deepspeed_init
from .optimization import AdamW, get_scheduler
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
from .trainer_pt_utils import batch_rows, concat_batches, gather_in_rank_order, to_numpy, weight_decay_groups
from .trainer_utils import (
    EvalPrediction,
    NonFiniteLoss,
    PredictionOutput,
    TrainOutput,
    denumpify_detensorize,
    get_last_checkpoint,
    set_seed,
    speed_metrics,
)
from .training_args import TrainingArguments
from .utils import logging

logger = logging.get_logger(__name__)

DEFAULT_CALLBACKS = [DefaultFlowCallback]  # 4.4.2's names: the callbacks every Trainer starts with
DEFAULT_PROGRESS_CALLBACK = ProgressCallback


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
        column = self.tokenizer.model_input_names[0] if self.tokenizer is not None else "input_ids"
        return train_sampler(self.train_dataset, self.args, length_column=column)

    def get_train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise ValueError("train() has no data: pass train_dataset to the Trainer")
        dataset = self._remove_unused_columns(self.train_dataset, "training")
        return self._loader(dataset, self.args.train_batch_size, self._get_train_sampler())

    def _eval_loader(self, dataset, description: str) -> DataLoader:
        dataset = self._remove_unused_columns(dataset, description)
        shards = self.args.world_size if self._shard_evaluation() else 1
        return self._loader(dataset, self.args.eval_batch_size, eval_sampler(dataset, shards, self.args.process_index))

    def _loader(self, dataset, batch_size: int, sampler: Optional[Sampler]) -> DataLoader:
        args = self.args
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=self.data_collator,
                          drop_last=args.dataloader_drop_last, num_workers=args.dataloader_num_workers,
                          pin_memory=args.dataloader_pin_memory and args.device.type == "cuda")

    def _shard_evaluation(self) -> bool:
        """Each process evaluates its own slice, except under ZeRO-3: there every forward is a collective that all
        processes must join, so each one evaluates the whole set."""
        return self.args.world_size > 1 and not self._zero3()

    def _zero3(self) -> bool:
        return self.deepspeed is not None and self.deepspeed.zero_optimization_stage() == 3

    def get_eval_dataloader(self, eval_dataset: Optional[Dataset] = None) -> DataLoader:
        if eval_dataset is None and self.eval_dataset is None:
            raise ValueError("evaluate() has no data: pass eval_dataset to the Trainer or to evaluate()")
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
        self._trainable_checkpoints = ckpt.trainable_only_writer(self.model, args)
        resume_from_checkpoint = ckpt.resolve_resume(resume_from_checkpoint, args.output_dir)
        if resume_from_checkpoint is not None:
            ckpt.load_model_weights(self.model, resume_from_checkpoint)

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
            ckpt.load_optimizer_files(resume_from_checkpoint, self.optimizer, self.lr_scheduler, self.scaler,
                                      args.device)
        self.state = TrainerState()

        total_batch = args.train_batch_size * ga * args.world_size
        num_examples = len(train_dataloader.dataset) if sized else total_batch * max_steps
        logger.info(f"training on {num_examples} examples for {num_train_epochs} epoch(s): {max_steps} optimizer steps "
                    f"of {total_batch} examples ({args.per_device_train_batch_size} per device x {args.world_size} "
                    f"process(es) x {ga} accumulated)")

        epochs_trained, batches_to_skip, rng_state = 0, 0, None
        if resume_from_checkpoint is not None and ckpt.has_trainer_state(resume_from_checkpoint):
            self.state, epochs_trained, batches_to_skip, rng_state = ckpt.resume_point(
                resume_from_checkpoint, args, updates_per_epoch)

        self.callback_handler.model = self.model
        self.callback_handler.optimizer, self.callback_handler.lr_scheduler = self.optimizer, self.lr_scheduler
        self.callback_handler.train_dataloader = train_dataloader
        self.state.max_steps, self.state.num_train_epochs = max_steps, num_train_epochs
        self.state.is_local_process_zero = self.is_local_process_zero()
        self.state.is_world_process_zero = self.is_world_process_zero()

        tally = ckpt.resumed_loss_tally(self.state.loss_tally, self.state.global_step, args.world_size,
                                        args.process_index)
        self.state.loss_tally = None
        # tr_loss stays a device tensor between logs to avoid a host sync every step
        tr_loss = self._tr_loss = torch.tensor(tally["unlogged"], device=args.device)
        # the first optimizer step whose loss was nan/inf (-1: none), also on the device; read where the loop syncs
        self._first_bad_step = torch.tensor(-1, device=args.device)
        self._logged_loss_sum = tally["logged_sum"]
        self._overflow_steps = 0
        self._engine_skipped_before = self.deepspeed.skipped_steps if self.deepspeed is not None else 0
        self._last_logged_step = tally["last_logged_step"]
        self._total_flos = self.state.total_flos
        model = self._wrap_model()
        model.zero_grad()
        start_time = time.time()
        self.control = self.callback_handler.on_train_begin(args, self.state, self.control)

        for epoch in range(epochs_trained, num_train_epochs):
            if rng_state is not None:
                if batches_to_skip == 0:  # resuming at an epoch boundary: continue the saved random streams
                    ckpt.restore_rng_state(rng_state)
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
                        ckpt.restore_rng_state(rng_state)
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
                ckpt.load_model_weights(self.model, self.state.best_model_checkpoint)

        metrics = speed_metrics("train", start_time, max_steps * total_batch)
        self.store_flos()
        metrics["total_flos"] = self.state.total_flos
        self._logged_loss_sum += self._mean_over_processes(tr_loss)
        train_loss = self._logged_loss_sum / max(self.state.global_step, 1)
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
            self._log_loss(tr_loss)
        metrics = self.evaluate() if self.control.should_evaluate else None
        if self.control.should_save:
            final = ckpt.checkpoint_dir(self.args.output_dir, self.state.global_step)
            try:
                self._save_checkpoint(metrics=metrics)
            # a full disk: torch.save reports it as a RuntimeError, safetensors as its own error, the rest as OSError
            except (OSError, RuntimeError, SafetensorError) as e:
                raise ckpt.save_failed(final, self.is_world_process_zero(), e) from e
            self.control = self.callback_handler.on_save(self.args, self.state, self.control)

    def _log_loss(self, tr_loss: torch.Tensor):
        """Log the mean loss per optimizer step since the previous log line, with the learning rate. The loop keeps
        adding into `tr_loss`, so it is emptied in place once its sum has moved to the running total."""
        since_last = self._mean_over_processes(tr_loss)
        tr_loss.zero_()
        steps = max(self.state.global_step - self._last_logged_step, 1)
        self._logged_loss_sum += since_last
        self._last_logged_step = self.state.global_step
        line = {"loss": round(since_last / steps, 4), "learning_rate": self.lr_scheduler.get_last_lr()[0]}
        skipped = self._skipped_steps()
        if skipped is not None:
            line["fp16_skipped_steps"] = skipped
        self.log(line)

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
        epoch = self.state.epoch
        if epoch is not None:  # in place: evaluate() returns the metrics it logged, epoch included
            logs.update(epoch=round(epoch, 2))
        self.state.log_history.append(dict(logs, step=self.state.global_step))
        self.control = self.callback_handler.on_log(self.args, self.state, self.control, logs)

    def store_flos(self):
        self.state.total_flos = self._total_flos

    def is_local_process_zero(self) -> bool:
        return self.args.local_rank in (-1, 0)

    def is_world_process_zero(self) -> bool:
        return self.args.process_index == 0

    # the closing reports of a script: a metrics table, {split}_results.json, trainer_state.json
    log_metrics = trainer_pt_utils.log_metrics
    save_metrics = trainer_pt_utils.save_metrics
    save_state = trainer_pt_utils.save_state

    # -- saving ---------------------------------------------------------------------------------------------------
    def save_model(self, output_dir: Optional[str] = None):
        """Save what `save_model_files` writes (the model, its LoRA / adapter + head tensors, the tokenizer) plus
        training_args.bin, in output_dir (default args.output_dir). Every process calls it; process 0 writes."""
        with self._gathered_weights():
            if not self.is_world_process_zero():
                return
            folder = self.args.output_dir if output_dir is None else output_dir
            logger.info(f"writing the model to {folder}")
            save_model_files(self.model, folder, self.tokenizer)
            ckpt.save_training_args(self.args, folder)

    def _gathered_weights(self, modifier_rank: Optional[int] = None):
        """Under ZeRO-3 each process holds a slice of every weight: this block sees them whole (every process must
        enter it; with modifier_rank, that process's changes are kept). A no-op otherwise."""
        if not self._zero3():
            return contextlib.nullcontext()
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(self.model.parameters()), modifier_rank=modifier_rank)

    def _save_checkpoint(self, metrics: Optional[Dict[str, float]] = None):
        """Write checkpoint-N atomically (checkpointing.atomic_checkpoint). Every process calls this: each stores
        its own random state, process 0 everything else."""
        args, writer = self.args, self.is_world_process_zero()
        final = ckpt.checkpoint_dir(args.output_dir, self.state.global_step)
        ckpt.update_best(self.state, args, metrics, final)
        self.store_flos()
        with ckpt.atomic_checkpoint(final, writer, self._barrier) as folder:
            torch.save(ckpt.capture_rng_state(self._epoch_begin_rng),
                       os.path.join(folder, ckpt.rng_file_name(args.world_size, args.process_index)))
            # the loss summed since the last log line, per process: a resumed run reports the same train_loss
            tally = {"logged_sum": self._logged_loss_sum, "last_logged_step": self._last_logged_step,
                     "unlogged": gather_in_rank_order(self._tr_loss.item())}
            if self.deepspeed is not None:  # each process writes its share of the optimizer state, with the schedule
                self.deepspeed.save_checkpoint(folder)
            if self._trainable_checkpoints is None:
                self.save_model(folder)
            elif writer:
                self._trainable_checkpoints.save(folder)
                save_model_files(self.model, folder, self.tokenizer, whole_model=False)
                ckpt.save_training_args(args, folder)
            if writer:
                ckpt.save_optimizer_files(folder, None if self.deepspeed else self.optimizer, self.lr_scheduler,
                                          self.scaler)
                replace(self.state, loss_tally=tally).save_to_json(os.path.join(folder, TRAINER_STATE_NAME))
        if writer:
            ckpt.rotate_checkpoints(args.output_dir, args.save_total_limit, self.state.best_model_checkpoint)
        self._barrier()

    # -- evaluation / prediction ------------------------------------------------------------------------------------
    def evaluate(self, eval_dataset: Optional[Dataset] = None, ignore_keys: Optional[List[str]] = None,
                 metric_key_prefix: str = "eval") -> Dict[str, float]:
        """Loss (and compute_metrics results) on the eval set, keys prefixed `{metric_key_prefix}_`; also logged."""
        # with no compute_metrics there is nothing to do with logits: the loop keeps only the loss
        loss_only = True if self.compute_metrics is None else None
        metrics = self._timed_loop(self.get_eval_dataloader(eval_dataset), "Evaluation", metric_key_prefix,
                                   prediction_loss_only=loss_only, ignore_keys=ignore_keys).metrics
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def predict(self, test_dataset: Dataset, ignore_keys: Optional[List[str]] = None,
                metric_key_prefix: str = "eval") -> PredictionOutput:
        """Predictions (logits), label_ids (if the data has labels) and metrics for `test_dataset`."""
        return self._timed_loop(self.get_test_dataloader(test_dataset), "Prediction", metric_key_prefix,
                                ignore_keys=ignore_keys)

    def _timed_loop(self, dataloader: DataLoader, description: str, metric_key_prefix: str, **kwargs):
        """prediction_loop, with its runtime and throughput added to the metrics."""
        began = time.time()
        output = self.prediction_loop(dataloader, description, metric_key_prefix=metric_key_prefix, **kwargs)
        output.metrics.update(speed_metrics(metric_key_prefix, began, len(dataloader.dataset)))
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
            n = batch_rows(inputs)
            loss, logits, label = self.prediction_step(model, inputs, prediction_loss_only, ignore_keys)
            if loss is not None:  # weight by batch size: the mean over examples, as 4.4.2
                loss_sum += loss.item() * n
                n_seen += n
            if logits is not None:
                preds.append(to_numpy(logits))
            if label is not None:
                labels.append(to_numpy(label))
            self.control = self.callback_handler.on_prediction_step(self.args, self.state, self.control)
        self._past = None
        if self._shard_evaluation():  # every process gets all shards, in dataset order
            shards = gather_in_rank_order((loss_sum, n_seen, preds, labels))
            loss_sum, n_seen = sum(s[0] for s in shards), sum(s[1] for s in shards)
            preds, labels = [p for s in shards for p in s[2]], [lab for s in shards for lab in s[3]]

        preds = concat_batches(preds) if preds else None
        label_ids = concat_batches(labels) if labels and not prediction_loss_only else None
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


