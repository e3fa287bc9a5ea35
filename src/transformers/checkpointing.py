"""The life of a training run's checkpoints: how checkpoint-N is written, which ones are kept, and how a run resumes
from one.

Writing is atomic: the files go into tmp-checkpoint-N, checkpoint_manifest.json (size and sha256 of every file) is
written last, then the folder is renamed; a crash leaves no folder that looks complete. A checkpoint holds the
model (whole, or its trainable tensors and a reference to the base: trainable_checkpoint.py), optimizer.pt,
scheduler.pt (scaler.pt under fp16), trainer_state.json with the running loss sums, every process's random state
and training_args.bin/.json. Resuming checks the manifest, restores all of it, and the Trainer replays the epoch's
data order. Every file is read with torch.load(weights_only=True): a checkpoint from elsewhere cannot run code.
The manifest and checkpoint lookup (get_last_checkpoint) are in trainer_utils, where 4.4.2 users import them.
"""
import contextlib
import os
import random
import shutil
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from torch import nn

from .adapters import ADAPTER_STATE_NAME, SAFE_ADAPTER_STATE_NAME, adapter_state_dict, is_adapter_key
from .file_utils import LORA_WEIGHTS_NAME, SAFE_LORA_WEIGHTS_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_NAME
from .lora import lora_state_dict
from .lora_interop import ADAPTER_DIR, save_peft_adapter
from .modeling_utils import load_state_dict_file
from .safe_loading import UnreadableCheckpoint, torch_load
from .trainer_callback import TrainerState
from .trainable_checkpoint import TrainableCheckpoints, base_of, is_trainable_only, rebuild_state_dict
from .trainer_utils import (
    PREFIX_CHECKPOINT_DIR,
    CheckpointSaveError,
    checkpoint_problem,
    get_last_checkpoint,
    write_checkpoint_manifest,
)
from .utils import logging

logger = logging.get_logger(__name__)

TRAINER_STATE_NAME = "trainer_state.json"
OPTIMIZER_NAME = "optimizer.pt"
SCHEDULER_NAME = "scheduler.pt"
SCALER_NAME = "scaler.pt"
RNG_STATE_NAME = "rng_state.pth"
TRAINING_ARGS_NAME = "training_args.bin"
TRAINING_ARGS_JSON = "training_args.json"


# -- writing ----------------------------------------------------------------------------------------------------
def checkpoint_dir(output_dir: str, step: int) -> str:
    return os.path.join(output_dir, f"{PREFIX_CHECKPOINT_DIR}-{step}")


def _tmp_dir(final: str) -> str:
    return os.path.join(os.path.dirname(final), f"tmp-{os.path.basename(final)}")


@contextlib.contextmanager
def atomic_checkpoint(final: str, writer: bool, barrier):
    """Yield a temporary folder for every process to write its files into; when the block ends, the writer process
    (process 0) adds the manifest and renames the folder to `final`. `barrier()` keeps the processes in step: nobody
    writes before the folder exists, and nobody goes on before it has its final name. An error inside the block
    leaves the temporary folder for `save_failed` to remove."""
    tmp = _tmp_dir(final)
    if writer:
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
    barrier()
    yield tmp
    barrier()  # every process's files are in tmp
    if writer:
        write_checkpoint_manifest(tmp)  # last: a folder whose files match it was saved whole
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    barrier()


def save_failed(final: str, writer: bool, error: Exception) -> CheckpointSaveError:
    """Remove the half-written folder of a save that failed; the error says which checkpoint is left to resume."""
    if writer:
        shutil.rmtree(_tmp_dir(final), ignore_errors=True)
    last = get_last_checkpoint(os.path.dirname(final))
    kept = f"{last} is intact" if last else "no earlier checkpoint was saved"
    cause = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
    return CheckpointSaveError(f"could not write {os.path.basename(final)} ({cause}): nothing of it was kept and "
                               f"{kept}; make room on the disk and run the same command again to resume")


def save_model_files(model: nn.Module, output_dir: str, tokenizer=None, whole_model: bool = True):
    """Write a model as every save of this package does: save_pretrained (a bare state dict for plain
    modules), the LoRA + head tensors when it has LoRA layers (pytorch_model_lora.bin, its safetensors twin and
    a PEFT adapter folder), the adapter + head tensors when it has adapters, and the tokenizer. Also used by
    scripts that train without a Trainer (run_glue_no_trainer.py). `whole_model=False` leaves out the first
    (trainable-only checkpoints): the LoRA/adapter files stay, as users pick warm starts from checkpoints."""
    from safetensors.torch import save_file

    os.makedirs(output_dir, exist_ok=True)
    if whole_model and hasattr(model, "save_pretrained"):
        model.save_pretrained(output_dir)
    elif whole_model:
        torch.save(model.state_dict(), os.path.join(output_dir, WEIGHTS_NAME))
    names = [name for name, _ in model.named_parameters()]
    if any("lora_" in name for name in names):
        lora = {k: v.contiguous() for k, v in lora_state_dict(model).items()}
        torch.save(lora, os.path.join(output_dir, LORA_WEIGHTS_NAME))
        save_file(lora, os.path.join(output_dir, SAFE_LORA_WEIGHTS_NAME), metadata={"format": "pt"})
        save_peft_adapter(model, os.path.join(output_dir, ADAPTER_DIR), state_dict=lora)  # for PEFT users
    if any(is_adapter_key(name) for name in names):
        adapters = {k: v.contiguous() for k, v in adapter_state_dict(model).items()}
        torch.save(adapters, os.path.join(output_dir, ADAPTER_STATE_NAME))  # --adapter_path reads it back
        save_file(adapters, os.path.join(output_dir, SAFE_ADAPTER_STATE_NAME), metadata={"format": "pt"})
    if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
        tokenizer.save_pretrained(output_dir)


def save_training_args(args, output_dir: str):
    # plain values only: torch.load(weights_only=True) reads the .bin, anything reads the .json
    torch.save(args.to_dict(), os.path.join(output_dir, TRAINING_ARGS_NAME))
    with open(os.path.join(output_dir, TRAINING_ARGS_JSON), "w", encoding="utf-8") as f:
        f.write(args.to_json_string() + "\n")


def save_optimizer_files(output_dir: str, optimizer, lr_scheduler, scaler=None):
    if optimizer is not None:  # None under DeepSpeed, whose engine stores its own
        torch.save(optimizer.state_dict(), os.path.join(output_dir, OPTIMIZER_NAME))
        torch.save(lr_scheduler.state_dict(), os.path.join(output_dir, SCHEDULER_NAME))
    if scaler is not None:
        torch.save(scaler.state_dict(), os.path.join(output_dir, SCALER_NAME))


def trainable_only_writer(model: nn.Module, args) -> Optional[TrainableCheckpoints]:
    """What writes checkpoints of the trainable tensors only (see TrainingArguments.save_trainable_only), or
    None when checkpoints hold the whole model."""
    wanted, base = args.save_trainable_only, base_of(model)
    if wanted is None:  # on when something is frozen and from_pretrained says where it came from
        wanted = base is not None and not args.deepspeed and not all(p.requires_grad for p in model.parameters())
    if not wanted:
        return None
    if base is None:
        raise ValueError("save_trainable_only needs a model loaded with from_pretrained: its checkpoints take "
                         "the frozen tensors from those weights; load it so, or pass --save_trainable_only false")
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info(f"checkpoints hold the {trained:,} trainable parameters and a reference to {base} "
                "(--save_trainable_only false: whole models)")
    return TrainableCheckpoints(model, base)


# -- which checkpoints are kept -----------------------------------------------------------------------------------
def update_best(state, args, metrics: Optional[Dict[str, float]], checkpoint: str):
    """Record `checkpoint` in `state` as the best one if its metrics beat the best so far (every process does it, so
    that load_best_model_at_end loads the same weights everywhere)."""
    if metrics is None or args.metric_for_best_model is None:
        return
    key = args.metric_for_best_model
    key = key if key.startswith("eval_") else f"eval_{key}"
    if key not in metrics:
        raise KeyError(f"metric_for_best_model={args.metric_for_best_model!r} is not among the eval "
                       f"metrics {sorted(metrics)}: pick one of those")
    value = metrics[key]
    better = np.greater if args.greater_is_better else np.less
    if state.best_metric is None or better(value, state.best_metric):
        state.best_metric = value
        state.best_model_checkpoint = checkpoint


def sorted_checkpoints(folder: str) -> List[str]:
    found = [(int(n.split("-")[1]), os.path.join(folder, n)) for n in os.listdir(folder)
             if n.startswith(f"{PREFIX_CHECKPOINT_DIR}-") and n.split("-")[1].isdigit()
             and os.path.isdir(os.path.join(folder, n))]
    return [path for _, path in sorted(found)]


def rotate_checkpoints(output_dir: str, limit: Optional[int], best: Optional[str]):
    """Keep at most `limit` checkpoints: delete the oldest, but never the best one nor the newest (needed to
    resume), so with a limit of 1 both may remain."""
    if limit is None or limit <= 0:
        return
    ckpts = sorted_checkpoints(output_dir)
    keep = {ckpts[-1]} | ({os.path.normpath(best)} if best else set())
    deletable = [c for c in ckpts if os.path.normpath(c) not in keep]
    for ckpt in deletable[: max(0, len(ckpts) - max(limit, len(keep)))]:
        logger.info(f"removing {ckpt} (save_total_limit={limit})")
        shutil.rmtree(ckpt)


# -- resuming -----------------------------------------------------------------------------------------------------
def resolve_resume(resume_from_checkpoint, output_dir: str) -> Optional[str]:
    """The checkpoint folder to resume from: the one given, the newest sound one in output_dir for True, or None.
    A folder that fails its manifest is refused in one line."""
    if resume_from_checkpoint is False or resume_from_checkpoint is None:
        return None
    if resume_from_checkpoint is True:
        found = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        if found is None:
            raise ValueError(f"No checkpoint-N folder found in output directory ({output_dir}) to resume from")
        return found
    if not os.path.isdir(resume_from_checkpoint):
        raise ValueError(f"Can't find a checkpoint folder at {resume_from_checkpoint}")
    problem = checkpoint_problem(resume_from_checkpoint)
    if problem is not None:
        raise UnreadableCheckpoint(f"{resume_from_checkpoint} is incomplete or damaged ({problem}): resume "
                                   "from an older checkpoint-N, or pass True to take the newest sound one")
    return resume_from_checkpoint


def load_model_weights(model: nn.Module, folder: str):
    """Load a saved model's weights into `model` in place (keeps its requires_grad flags and LoRA setup)."""
    if is_trainable_only(folder):
        logger.info(f"Rebuilding the model from its base model and the trained tensors of {folder}")
        model.load_state_dict(rebuild_state_dict(model, folder))
        return
    for name in (SAFE_WEIGHTS_NAME, WEIGHTS_NAME):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            logger.info(f"Loading model weights from {path}")
            model.load_state_dict(load_state_dict_file(path))
            return
    raise ValueError(f"{folder} holds neither {SAFE_WEIGHTS_NAME} nor {WEIGHTS_NAME}: pass a checkpoint folder "
                     "written by Trainer")


def load_optimizer_files(folder: Optional[str], optimizer, lr_scheduler, scaler=None, device=None):
    if folder is None:
        return
    opt, sched = os.path.join(folder, OPTIMIZER_NAME), os.path.join(folder, SCHEDULER_NAME)
    if os.path.isfile(opt) and os.path.isfile(sched):
        optimizer.load_state_dict(torch_load(opt, map_location=device))
        lr_scheduler.load_state_dict(torch_load(sched))
    path = os.path.join(folder, SCALER_NAME)
    if scaler is not None and os.path.isfile(path):
        scaler.load_state_dict(torch_load(path))


def has_trainer_state(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, TRAINER_STATE_NAME))


def resume_point(folder: str, args, updates_per_epoch: int):
    """Where a run resumed from `folder` picks up: (its TrainerState, the epochs already done, the batches of the
    current epoch to pass over, the random state saved for this process or None). With args.ignore_data_skip the
    epoch restarts from its first batch on the current random state."""
    state = TrainerState.load_from_json(os.path.join(folder, TRAINER_STATE_NAME))
    epochs_done, skip, rng = state.global_step // updates_per_epoch, 0, None
    if not args.ignore_data_skip:
        skip = (state.global_step % updates_per_epoch) * args.gradient_accumulation_steps
        path = os.path.join(folder, rng_file_name(args.world_size, args.process_index))
        rng = read_rng_state(path) if os.path.isfile(path) else None
    logger.info(f"resumed {folder}: at step {state.global_step} (epoch {epochs_done}), the first {skip} batches of "
                "this epoch are passed over")
    return state, epochs_done, skip, rng


def resumed_loss_tally(tally: Optional[Dict[str, Any]], global_step: int, world_size: int, rank: int):
    """The loss sums a run starts from: this process's share of a resumed checkpoint's, else none yet."""
    if tally is None or len(tally["unlogged"]) != world_size:  # a fresh run, or another world size
        return {"logged_sum": 0.0, "last_logged_step": global_step, "unlogged": 0.0}
    return {**tally, "unlogged": tally["unlogged"][rank]}


# -- random state -------------------------------------------------------------------------------------------------
def rng_file_name(world_size: int, rank: int) -> str:
    return RNG_STATE_NAME if world_size == 1 else f"rng_state_{rank}.pth"


def capture_rng_state(epoch_begin: Optional[torch.Tensor]) -> Dict[str, Any]:
    """Every random stream as tensors and plain numbers, which torch.load(weights_only=True) reads back.
    `epoch_begin` is the torch state the epoch's shuffle was drawn from, to replay it after a mid-epoch resume."""
    version, words, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(words, dtype=torch.int64), "gauss": gauss},
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "cpu": torch.get_rng_state(),
        "epoch_begin": epoch_begin,
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def read_rng_state(path: str) -> Dict[str, Any]:
    try:
        return torch_load(path)
    except UnreadableCheckpoint as e:
        raise UnreadableCheckpoint(f"{e} (delete it to resume without the saved random state)") from None


def restore_rng_state(state: Dict[str, Any]):
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    np.random.set_state(("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
