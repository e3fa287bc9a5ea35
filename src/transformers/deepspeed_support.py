"""`--deepspeed ds_config.json`: the Trainer's model, optimizer and schedule handed to `deepspeed.initialize`.

The command-line flags stay the source of truth for what the Trainer's own loop relies on: the per-device batch, the
accumulation and the precision. The config may say "auto" for any of them (or leave the batch keys out); a value it
states explicitly must agree with the flags. "auto" elsewhere is filled from the flags too (clipping, the optimizer's
lr/betas/eps/weight_decay, the scheduler's warmup and total steps, ZeRO bucket sizes from the model's hidden size).

Without an "optimizer" block the engine runs the Trainer's AdamW (4.4.2's parameter groups); without a "scheduler"
block, the Trainer's schedule. The engine then owns gradient averaging, clipping, loss scaling, the optimizer and
schedule steps, and the checkpoint of their state (`engine.save_checkpoint` inside checkpoint-N). DeepSpeed reads
those files back with a full unpickler, so before it does, every one of them is opened here with
torch.load(weights_only=True), allowing besides tensors and plain values only the few DeepSpeed classes its
checkpoints hold (DEEPSPEED_CHECKPOINT_CLASSES): a file holding anything else is refused in one line, unread by
DeepSpeed, and a crafted checkpoint cannot run code on resume. With fp16/bf16 enabled the engine casts
the whole model, so evaluation runs in that precision too. Under ZeRO-3 each process holds a slice of every weight:
saving gathers them, and every process evaluates the whole set (each of its forwards is a collective).
"""
import copy
import json
import os
import re
from typing import Any, Dict, Optional, Tuple

AUTO = "auto"


def load_deepspeed_config(path: str) -> Dict[str, Any]:
    """The config file as a dict; a missing or malformed file is a one-line ValueError."""
    if not os.path.isfile(path):
        raise ValueError(f"--deepspeed {path}: no such file; pass a DeepSpeed json config (e.g. "
                         "scripts/ds_config_zero2.json)")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        problem = None if isinstance(config, dict) else "the top level must be a json object"
    except json.JSONDecodeError as err:
        problem = f"not valid json ({err})"
    if problem:
        raise ValueError(f"--deepspeed {path}: {problem}; fix the file")
    return config


def resolve_batch_sizes(config: Dict[str, Any], micro: int, accumulation: int, world_size: int,
                        source: str = "ds_config") -> Tuple[int, int, int]:
    """(train_micro_batch_size_per_gpu, gradient_accumulation_steps, train_batch_size) for `config`, written into it.

    Missing or "auto" keys take the Trainer's values (micro = --per_device_train_batch_size, accumulation =
    --gradient_accumulation_steps, total = micro x accumulation x world_size); explicit values must match them,
    since the Trainer's data loader and accumulation loop use the flags."""
    wanted = {
        "train_micro_batch_size_per_gpu": (micro, f"--per_device_train_batch_size {micro}"),
        "gradient_accumulation_steps": (accumulation, f"--gradient_accumulation_steps {accumulation}"),
        "train_batch_size": (micro * accumulation * world_size,
                             f"{micro} per device x {accumulation} accumulated x {world_size} process(es) = "
                             f"{micro * accumulation * world_size}"),
    }
    for key, (value, origin) in wanted.items():
        given = config.get(key, AUTO)
        if given != AUTO and given != value:
            raise ValueError(f"{source}: {key} is {given} but the run has {origin}; set it to \"auto\" or change "
                             "the flags")
        config[key] = value
    return tuple(config[key] for key in wanted)


def fill_deepspeed_config(config: Dict[str, Any], args, world_size: int, num_training_steps: int,
                          num_warmup_steps: int, hidden_size: Optional[int] = None) -> Dict[str, Any]:
    """A copy of `config` with every "auto" resolved from TrainingArguments `args` (see the module docstring);
    one-line ValueError on a conflict with the flags or an "auto" that has no source."""
    config = copy.deepcopy(config)
    source = os.path.basename(args.deepspeed) if args.deepspeed else "ds_config"
    resolve_batch_sizes(config, args.per_device_train_batch_size, args.gradient_accumulation_steps, world_size,
                        source)
    if config.get("gradient_clipping") == AUTO:
        config["gradient_clipping"] = args.max_grad_norm or 0.0

    for name, flag in (("fp16", args.fp16), ("bf16", args.bf16)):
        section = config.setdefault(name, {})
        enabled = section.get("enabled", AUTO)
        if enabled != AUTO and bool(enabled) != flag:
            raise ValueError(f"{source}: {name}.enabled is {str(enabled).lower()} but --{name} is "
                             f"{'on' if flag else 'off'}; set it to \"auto\" or {'drop' if flag else 'pass'} --{name}")
        section["enabled"] = flag

    if "optimizer" in config:
        _fill(config["optimizer"].get("params", {}), {
            "lr": args.learning_rate, "betas": [args.adam_beta1, args.adam_beta2], "eps": args.adam_epsilon,
            "weight_decay": args.weight_decay})
    else:  # the Trainer's AdamW: not one of the optimizers ZeRO knows, which it accepts only when told
        config.setdefault("zero_allow_untested_optimizer", True)
    if "scheduler" in config:
        _fill(config["scheduler"].get("params", {}), {
            "warmup_min_lr": 0, "warmup_max_lr": args.learning_rate, "warmup_num_steps": num_warmup_steps,
            "total_num_steps": num_training_steps})
    if hidden_size:  # the sizes DeepSpeed's own documentation suggests per hidden size
        _fill(config.get("zero_optimization", {}), {
            "reduce_bucket_size": hidden_size * hidden_size,
            "stage3_prefetch_bucket_size": int(0.9 * hidden_size * hidden_size),
            "stage3_param_persistence_threshold": 10 * hidden_size})

    left = _auto_paths(config)
    if left:
        raise ValueError(f"{source}: nothing fills \"auto\" at {', '.join(left)}; give a value there")
    return config


def _fill(section: Dict[str, Any], values: Dict[str, Any]):
    for key, value in values.items():
        if section.get(key) == AUTO:
            section[key] = value


def _auto_paths(node, prefix: str = ""):
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _auto_paths(v, f"{prefix}{k}.")]
    return [prefix[:-1]] if node == AUTO else []


def zero_stage(config: Dict[str, Any]) -> int:
    return int(config.get("zero_optimization", {}).get("stage", 0))


# "module.Class" of every Python object DeepSpeed (ZeRO 1-3, fp16 loss scaling) pickles into its checkpoint files,
# found by loading its checkpoints with nothing else allowed
DEEPSPEED_CHECKPOINT_CLASSES = (
    "deepspeed.runtime.fp16.loss_scaler.LossScaler",
    "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler",
    "deepspeed.runtime.zero.config.ZeroStageEnum",
    "deepspeed.utils.tensor_fragment.fragment_address",
)


def check_deepspeed_checkpoint(folder: str):
    """Open every file DeepSpeed's load_checkpoint will unpickle from `folder` (the .pt files of the tag that
    `latest` names) with weights_only=True and DEEPSPEED_CHECKPOINT_CLASSES allowed; UnreadableCheckpoint naming the
    file and the class otherwise. Nothing in a refused file is ever instantiated."""
    import importlib

    from .safe_loading import UnreadableCheckpoint, torch_load

    with open(os.path.join(folder, "latest"), encoding="utf-8") as f:
        tag = f.read().strip()
    step_dir = os.path.join(folder, tag)
    if not tag or os.path.sep in tag or not os.path.isdir(step_dir):
        raise UnreadableCheckpoint(f"{folder}/latest names {tag!r}, which is not a folder of the checkpoint: "
                                   "resume from an intact checkpoint-N")
    allowed = [getattr(importlib.import_module(name.rpartition(".")[0]), name.rpartition(".")[2])
               for name in DEEPSPEED_CHECKPOINT_CLASSES]
    for name in sorted(os.listdir(step_dir)):
        if not name.endswith(".pt"):
            continue
        path = os.path.join(step_dir, name)
        try:
            torch_load(path, allowed=allowed)
        except UnreadableCheckpoint as e:
            found = re.search(r"holds pickled Python objects \(([\w.]+)\)", str(e))
            if found is None:
                raise
            raise UnreadableCheckpoint(f"{path} holds a {found.group(1)} object, which DeepSpeed never writes into a "
                                       "checkpoint: refused unread, since unpickling it could run code; resume from "
                                       "a checkpoint you made") from None


def deepspeed_init(trainer, num_training_steps: int, resume_from_checkpoint: Optional[str] = None):
    """Build the engine for `trainer` (setting trainer.optimizer / lr_scheduler to the engine's) and, when resuming,
    load the engine's state saved in `resume_from_checkpoint`."""
    import deepspeed

    from .optimization import get_scheduler

    args = trainer.args
    warmup = trainer._num_warmup_steps(num_training_steps)
    hidden = getattr(getattr(trainer.model, "config", None), "hidden_size", None)
    config = fill_deepspeed_config(load_deepspeed_config(args.deepspeed), args, args.world_size, num_training_steps,
                                   warmup, hidden)
    optimizer, scheduler = None, None
    if "optimizer" not in config:
        trainer.create_optimizer_and_scheduler(num_training_steps)
        optimizer = trainer.optimizer
        scheduler = trainer.lr_scheduler if "scheduler" not in config else None
    elif "scheduler" not in config:  # the Trainer's schedule over the optimizer the engine builds
        def scheduler(opt):
            return get_scheduler(args.lr_scheduler_type, opt, num_warmup_steps=warmup,
                                 num_training_steps=num_training_steps)
    trainable = [p for p in trainer.model.parameters() if p.requires_grad]
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=trainer.model, model_parameters=trainable, optimizer=optimizer, lr_scheduler=scheduler, config=config)
    trainer.optimizer, trainer.lr_scheduler = optimizer, scheduler
    if resume_from_checkpoint is not None:
        if not os.path.isfile(os.path.join(resume_from_checkpoint, "latest")):
            raise ValueError(f"{resume_from_checkpoint} holds no DeepSpeed state (no 'latest' file): resume it "
                             "without --deepspeed, or start afresh with --overwrite_output_dir")
        check_deepspeed_checkpoint(resume_from_checkpoint)  # before DeepSpeed's own, full unpickling
        path, _ = engine.load_checkpoint(resume_from_checkpoint)
        if path is None:
            raise ValueError(f"DeepSpeed could not load its state from {resume_from_checkpoint}")
    return engine
