"""Small shared pieces of the training loop: result tuples, strategy enums, seeding, checkpoint discovery."""
import hashlib
import json
import os
import random
import re
import time
from enum import Enum
from typing import Any, Dict, NamedTuple, Optional, Tuple, Union

import numpy as np

from .utils import logging

PREFIX_CHECKPOINT_DIR = "checkpoint"
_re_checkpoint = re.compile(r"^" + PREFIX_CHECKPOINT_DIR + r"-(\d+)$")
# size and sha256 of every file of a checkpoint, written last: resume checks them before trusting the folder
CHECKPOINT_MANIFEST = "checkpoint_manifest.json"

logger = logging.get_logger(__name__)


class ExplicitEnum(Enum):
    """Enum whose bad-value error lists the accepted values."""

    @classmethod
    def _missing_(cls, value):
        raise ValueError(f"{value!r} is not a valid {cls.__name__}: pick one of {', '.join(e.value for e in cls)}")


class IntervalStrategy(ExplicitEnum):
    NO = "no"
    STEPS = "steps"
    EPOCH = "epoch"


EvaluationStrategy = IntervalStrategy  # 4.4.2 kept the old name as a deprecated alias


class SchedulerType(ExplicitEnum):
    LINEAR = "linear"
    COSINE = "cosine"
    COSINE_WITH_RESTARTS = "cosine_with_restarts"
    POLYNOMIAL = "polynomial"
    CONSTANT = "constant"
    CONSTANT_WITH_WARMUP = "constant_with_warmup"


class EvalPrediction(NamedTuple):
    """What `compute_metrics` receives: model outputs (logits) and the gold labels, as numpy arrays."""

    predictions: Union[np.ndarray, Tuple[np.ndarray, ...]]
    label_ids: Optional[np.ndarray]


class PredictionOutput(NamedTuple):
    predictions: Union[np.ndarray, Tuple[np.ndarray, ...]]
    label_ids: Optional[np.ndarray]
    metrics: Optional[Dict[str, float]]


class TrainOutput(NamedTuple):
    global_step: int
    training_loss: float
    metrics: Dict[str, float]


class NonFiniteLoss(RuntimeError):
    """Training stopped because a step's loss was nan or inf (one line naming the step and the last checkpoint)."""


class CheckpointSaveError(OSError):
    """A checkpoint could not be written (disk full...): one line naming it and the checkpoint left to resume from."""


def set_seed(seed: int):
    """Seed python, numpy and torch (CPU and every GPU), as the LoRA fork does for reproducible runs.

    PYTHONHASHSEED only affects child processes (e.g. dataloader workers); CUBLAS_WORKSPACE_CONFIG is what
    cuBLAS needs for deterministic matmuls when `torch.use_deterministic_algorithms(True)` is on.
    """
    import torch  # here, not at the top: argument parsing (which needs this module's enums) must not load torch

    os.environ["PYTHONHASHSEED"] = str(seed)
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":16:8"
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def is_main_process(local_rank: int) -> bool:
    """Whether this process logs and saves: the only process (-1) or the first of a distributed run (0)."""
    return local_rank in (-1, 0)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_digests(folder: str) -> Dict[str, Dict[str, Any]]:
    """{relative path: {"size", "sha256"}} for every file under `folder` except the manifest itself."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            if rel != CHECKPOINT_MANIFEST:
                out[rel] = {"size": os.path.getsize(path), "sha256": file_sha256(path)}
    return dict(sorted(out.items()))


def write_checkpoint_manifest(folder: str):
    """Record what `folder` holds once every file is written (see `checkpoint_problem`)."""
    with open(os.path.join(folder, CHECKPOINT_MANIFEST), "w", encoding="utf-8") as f:
        f.write(json.dumps(_file_digests(folder), indent=1) + "\n")


def checkpoint_problem(folder: str) -> Optional[str]:
    """Why `folder` cannot be trusted to resume from (a file missing, cut short or altered since it was saved), or
    None when it matches its manifest. A folder without a manifest (written by an older version) is trusted."""
    path = os.path.join(folder, CHECKPOINT_MANIFEST)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            expected = json.load(f)
    except (OSError, ValueError):
        return f"its {CHECKPOINT_MANIFEST} is unreadable"
    found = _file_digests(folder)
    for rel, want in expected.items():
        have = found.get(rel)
        if have is None:
            return f"{rel} is missing"
        if have["size"] != want["size"]:
            return f"{rel} holds {have['size']} bytes, {want['size']} were saved"
        if have["sha256"] != want["sha256"]:
            return f"{rel} differs from what was saved (sha256)"
    return None


def get_last_checkpoint(folder: str) -> Optional[str]:
    """Path of the complete `checkpoint-N` sub-folder of `folder` with the largest N, or None if there is none.
    A newer checkpoint that is damaged (see `checkpoint_problem`) is passed over with a warning."""
    found = sorted(
        ((int(m.group(1)), name) for name in os.listdir(folder)
         if (m := _re_checkpoint.match(name)) and os.path.isdir(os.path.join(folder, name))),
        reverse=True,
    )
    for _, name in found:
        path = os.path.join(folder, name)
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        logger.warning(f"{path} is incomplete or damaged ({problem}): passed over for an older checkpoint")
    return None


def speed_metrics(split: str, start_time: float, num_samples: Optional[int] = None) -> Dict[str, float]:
    """`{split}_runtime` (s) and, when the sample count is known, `{split}_samples_per_second`."""
    runtime = time.time() - start_time
    metrics = {f"{split}_runtime": round(runtime, 4)}
    if num_samples is not None:
        metrics[f"{split}_samples_per_second"] = round(num_samples / max(runtime, 1e-9), 3)
    return metrics


def denumpify_detensorize(obj: Any) -> Any:
    """Metrics made JSON-ready: a numpy scalar or a one-element tensor becomes its Python number, dicts, lists and
    tuples are rebuilt around converted contents, and everything else passes through as it is."""
    import torch

    if isinstance(obj, dict):
        return {key: denumpify_detensorize(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(map(denumpify_detensorize, obj))
    one_number = isinstance(obj, np.generic) or (isinstance(obj, torch.Tensor) and obj.numel() == 1)
    return obj.item() if one_number else obj
