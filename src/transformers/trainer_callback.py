"""Trainer state, the control flags callbacks set, and the built-in callbacks (flow, progress bars, TensorBoard).

The Trainer fires events (on_step_end, on_epoch_end, ...); callbacks read `TrainerState`, may flip flags on
`TrainerControl` (should_log / should_evaluate / should_save / should_training_stop), and the Trainer acts on them.
"""
import dataclasses
import json
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from tqdm.auto import tqdm

from .trainer_utils import IntervalStrategy
from .utils import logging

logger = logging.get_logger(__name__)


@dataclass
class TrainerState:
    """What a checkpoint's trainer_state.json holds: progress, log history and the best checkpoint so far."""

    epoch: Optional[float] = None
    global_step: int = 0
    max_steps: int = 0
    num_train_epochs: int = 0
    total_flos: float = 0
    log_history: List[Dict[str, float]] = None
    best_metric: Optional[float] = None
    best_model_checkpoint: Optional[str] = None
    is_local_process_zero: bool = True
    is_world_process_zero: bool = True
    is_hyper_param_search: bool = False
    trial_name: Optional[str] = None
    trial_params: Optional[Dict[str, Any]] = None
    # in a checkpoint only: the running loss sums at that step (the logged sum, the step last logged, each
    # process's loss since then), so a resumed run logs the same losses and train_loss as an unbroken one
    loss_tally: Optional[Dict[str, Any]] = None

    def __post_init__(self):
        if self.log_history is None:
            self.log_history = []

    def save_to_json(self, json_path: str):
        with open(json_path, "w", encoding="utf-8") as f:
            f.write(json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load_from_json(cls, json_path: str) -> "TrainerState":
        with open(json_path, encoding="utf-8") as f:
            return cls(**json.load(f))


@dataclass
class TrainerControl:
    should_training_stop: bool = False
    should_epoch_stop: bool = False
    should_save: bool = False
    should_evaluate: bool = False
    should_log: bool = False

    def _new_training(self):
        self.should_training_stop = False

    def _new_epoch(self):
        self.should_epoch_stop = False

    def _new_step(self):
        self.should_save = False
        self.should_evaluate = False
        self.should_log = False


class TrainerCallback:
    """Base class: override the events you need. Each receives (args, state, control, **kwargs) where kwargs hold
    model, tokenizer, optimizer, lr_scheduler, train_dataloader, eval_dataloader (+ logs / metrics for on_log /
    on_evaluate). Returning a TrainerControl replaces the current one."""

    def on_init_end(self, args, state, control, **kwargs):
        pass

    def on_train_begin(self, args, state, control, **kwargs):
        pass

    def on_train_end(self, args, state, control, **kwargs):
        pass

    def on_epoch_begin(self, args, state, control, **kwargs):
        pass

    def on_epoch_end(self, args, state, control, **kwargs):
        pass

    def on_step_begin(self, args, state, control, **kwargs):
        pass

    def on_step_end(self, args, state, control, **kwargs):
        pass

    def on_evaluate(self, args, state, control, **kwargs):
        pass

    def on_save(self, args, state, control, **kwargs):
        pass

    def on_log(self, args, state, control, **kwargs):
        pass

    def on_prediction_step(self, args, state, control, **kwargs):
        pass


class CallbackHandler(TrainerCallback):
    """Calls every registered callback in order for each event; also resets the control flags an event consumes."""

    def __init__(self, callbacks, model, tokenizer, optimizer, lr_scheduler):
        self.callbacks = []
        for cb in callbacks:
            self.add_callback(cb)
        self.model, self.tokenizer = model, tokenizer
        self.optimizer, self.lr_scheduler = optimizer, lr_scheduler
        self.train_dataloader = self.eval_dataloader = None

    def add_callback(self, callback):
        cb = callback() if isinstance(callback, type) else callback
        if any(type(c) is type(cb) for c in self.callbacks):
            logger.warning(f"adding a second {type(cb).__name__} callback: it will run twice")
        self.callbacks.append(cb)

    def pop_callback(self, callback):
        for cb in self.callbacks:
            if cb is callback or (isinstance(callback, type) and type(cb) is callback):
                self.callbacks.remove(cb)
                return cb
        return None

    def remove_callback(self, callback):
        self.pop_callback(callback)

    @property
    def callback_list(self) -> str:
        return "\n".join(type(cb).__name__ for cb in self.callbacks)

    def call_event(self, event, args, state, control, **kwargs):
        context = {name: getattr(self, name) for name in ("model", "tokenizer", "optimizer", "lr_scheduler",
                                                           "train_dataloader", "eval_dataloader")}
        for cb in self.callbacks:
            # a callback may hand back a new control object; None keeps the current one
            control = getattr(cb, event)(args, state, control, **context, **kwargs) or control
        return control

    def on_init_end(self, args, state, control):
        return self.call_event("on_init_end", args, state, control)

    def on_train_begin(self, args, state, control):
        control._new_training()
        return self.call_event("on_train_begin", args, state, control)

    def on_train_end(self, args, state, control):
        return self.call_event("on_train_end", args, state, control)

    def on_epoch_begin(self, args, state, control):
        control._new_epoch()
        return self.call_event("on_epoch_begin", args, state, control)

    def on_epoch_end(self, args, state, control):
        return self.call_event("on_epoch_end", args, state, control)

    def on_step_begin(self, args, state, control):
        control._new_step()
        return self.call_event("on_step_begin", args, state, control)

    def on_step_end(self, args, state, control):
        return self.call_event("on_step_end", args, state, control)

    def on_evaluate(self, args, state, control, metrics):
        control.should_evaluate = False
        return self.call_event("on_evaluate", args, state, control, metrics=metrics)

    def on_save(self, args, state, control):
        control.should_save = False
        return self.call_event("on_save", args, state, control)

    def on_log(self, args, state, control, logs):
        control.should_log = False
        return self.call_event("on_log", args, state, control, logs=logs)

    def on_prediction_step(self, args, state, control):
        return self.call_event("on_prediction_step", args, state, control)


def _interval_ends(strategy, every, step=None):
    """Whether an interval of `strategy` ends now: at an epoch end (step None) for EPOCH, at every `every`-th
    optimizer step for STEPS (never for NO, nor for a non-positive `every`)."""
    if step is None:
        return strategy == IntervalStrategy.EPOCH
    return strategy == IntervalStrategy.STEPS and every > 0 and step % every == 0


class DefaultFlowCallback(TrainerCallback):
    """The schedule: log, evaluate and save at the intervals the arguments set; stop at max_steps.

    With load_best_model_at_end a save follows every evaluation instead of keeping its own interval, so each
    checkpoint carries the metric that ranks it."""

    logging_steps = None  # the logging interval of the current run (see on_train_begin)

    def on_train_begin(self, args, state, control, **kwargs):
        self.logging_steps = args.logging_steps
        if args.logging_strategy == IntervalStrategy.STEPS and 0 < state.max_steps < args.logging_steps:
            # a run shorter than one interval would never show its loss: about ten loss lines instead
            self.logging_steps = max(1, state.max_steps // 10)
            if state.is_world_process_zero:
                logger.info(f"logging every {self.logging_steps} steps: the run has {state.max_steps} optimizer "
                            f"steps, fewer than --logging_steps {args.logging_steps}")

    def _schedule(self, args, control, step=None):
        evaluate = _interval_ends(args.evaluation_strategy, args.eval_steps, step)
        save = evaluate if args.load_best_model_at_end else _interval_ends(args.save_strategy, args.save_steps, step)
        # flags only ever switch on here: another callback may already have asked for the same
        every = args.logging_steps if self.logging_steps is None else self.logging_steps
        control.should_log |= _interval_ends(args.logging_strategy, every, step)
        control.should_evaluate |= evaluate
        control.should_save |= save
        return control

    def on_step_end(self, args, state, control, **kwargs):
        control.should_log |= state.global_step == 1 and args.logging_first_step
        control.should_training_stop |= state.global_step >= state.max_steps
        return self._schedule(args, control, state.global_step)

    def on_epoch_end(self, args, state, control, **kwargs):
        return self._schedule(args, control)


def log_line(logs, state):
    """One line per log entry: `step 32/384 | epoch 1 | loss 0.6931 | learning_rate 0.004883`, 4 significant
    digits (trainer_state.json keeps full precision). The end-of-training summary gives None: the Trainer prints
    it as a table right after."""
    if "train_runtime" in logs:
        return None
    fields = [f"step {state.global_step}/{state.max_steps}"]
    for key, value in logs.items():
        if key in ("total_flos", "step"):
            continue
        fields.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return " | ".join(fields)


def _close(bar):
    if bar is not None:
        bar.close()


class ProgressCallback(TrainerCallback):
    """On the main process: one bar over the optimizer steps of training, and a passing one over each evaluation's
    batches (left on screen only when no training bar is there to hold the results)."""

    def __init__(self):
        self.train_bar = self.eval_bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_local_process_zero:
            self.train_bar = tqdm(total=state.max_steps, initial=state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.train_bar is not None:
            self.train_bar.update(state.global_step - self.train_bar.n)

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if self.eval_bar is None:
            if not (state.is_local_process_zero and hasattr(eval_dataloader, "__len__")):
                return
            if self.train_bar is not None and not sys.stderr.isatty():
                return  # a second bar under the first moves the cursor with escape codes: noise in a log file
            self.eval_bar = tqdm(total=len(eval_dataloader), leave=self.train_bar is None)
        self.eval_bar.update()

    def on_evaluate(self, args, state, control, **kwargs):
        _close(self.eval_bar)
        self.eval_bar = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.train_bar is None:
            return
        if "loss" in logs:  # the running loss and learning rate stay in view on the bar
            self.train_bar.set_postfix(loss=f"{logs['loss']:.4g}", lr=f"{logs.get('learning_rate', 0):.3g}",
                                       refresh=False)
        line = log_line(logs, state)
        if line:
            self.train_bar.write(line)

    def on_train_end(self, args, state, control, **kwargs):
        _close(self.train_bar)
        self.train_bar = None


class PrinterCallback(TrainerCallback):
    """Print each log dict (used instead of the progress bars when disable_tqdm)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        line = log_line(logs, state)
        if state.is_local_process_zero and line:
            print(line, flush=True)


class TensorBoardCallback(TrainerCallback):
    """Write every numeric log value as a TensorBoard scalar (tag = log key, x = global step) in args.logging_dir."""

    def __init__(self, tb_writer=None):
        self.tb_writer = tb_writer

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        if self.tb_writer is None:
            from tensorboardX import SummaryWriter

            self.tb_writer = SummaryWriter(logdir=args.logging_dir)
        self.tb_writer.add_text("args", args.to_json_string())

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.tb_writer is None:  # logging outside train(), e.g. a lone evaluate()
            self.on_train_begin(args, state, control)
        if self.tb_writer is None:  # not the world-zero process: nothing to write
            return
        for key, value in logs.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.tb_writer.add_scalar(key, value, state.global_step)
        self.tb_writer.flush()

    def on_train_end(self, args, state, control, **kwargs):
        if self.tb_writer is not None:
            self.tb_writer.close()
            self.tb_writer = None


class EarlyStoppingCallback(TrainerCallback):
    """Stops training once `metric_for_best_model` has failed `early_stopping_patience` evaluations in a row to
    improve on the best value by more than `early_stopping_threshold`. Needs load_best_model_at_end=True and an
    evaluation strategy (so that the best metric is tracked)."""

    def __init__(self, early_stopping_patience: int = 1, early_stopping_threshold: Optional[float] = 0.0):
        self.early_stopping_patience = early_stopping_patience
        self.early_stopping_threshold = early_stopping_threshold
        self.early_stopping_patience_counter = 0

    def check_metric_value(self, args, state, control, metric_value):
        better = (lambda a, b: a > b) if args.greater_is_better else (lambda a, b: a < b)
        if state.best_metric is None or (
                better(metric_value, state.best_metric)
                and abs(metric_value - state.best_metric) > self.early_stopping_threshold):
            self.early_stopping_patience_counter = 0
        else:
            self.early_stopping_patience_counter += 1

    def on_train_begin(self, args, state, control, **kwargs):
        assert args.load_best_model_at_end, "EarlyStoppingCallback needs load_best_model_at_end=True"
        assert args.metric_for_best_model is not None, "EarlyStoppingCallback needs metric_for_best_model"
        assert str(getattr(args.evaluation_strategy, "value", args.evaluation_strategy)) != "no", \
            "EarlyStoppingCallback needs an evaluation strategy (steps or epoch)"

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        name = args.metric_for_best_model
        if not name.startswith("eval_"):
            name = f"eval_{name}"
        value = (metrics or {}).get(name)
        if value is None:
            logger.warning(f"early stopping needs {name} among the evaluation metrics, which lack it: "
                           "early stopping is off")
            return
        self.check_metric_value(args, state, control, value)
        if self.early_stopping_patience_counter >= self.early_stopping_patience:
            control.should_training_stop = True
