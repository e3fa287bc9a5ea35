"""Reading checkpoint files that may come from anyone: tensors and plain values only, never a full unpickler.

torch.load always runs here with weights_only=True, which refuses any pickled object other than tensors, numbers,
strings and containers of them, so a file cannot run code when it is read. Every failure becomes one line that says
what the file is and what to do (torch's own messages span several lines and suggest weights_only=False).
"""
import os
import re
import warnings

import torch

_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


class UnreadableCheckpoint(OSError):
    """A checkpoint file that is missing, damaged, or holds more than tensors and plain values (one-line message)."""


def sniff(path):
    """'a JSON file' or 'a text file' when the start of a file says so, else None (binary, empty or unreadable).
    Checkpoints are binary: zip archives, pickles and safetensors headers all hold NUL bytes or invalid UTF-8."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if not head or b"\x00" in head:
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # not merely a character cut at the end of the sample
            return None
    return "a JSON file" if head.lstrip()[:1] in (b"{", b"[") else "a text file"


def describe_object(obj):
    """What a non-tensor object loaded from a checkpoint folder is, judging by its keys; None when unknown."""
    if not isinstance(obj, dict):
        return None
    keys = set(obj)
    if {"state", "param_groups"} <= keys:
        return "an optimizer state (optimizer.pt of a checkpoint)"
    if "base_lrs" in keys or "last_epoch" in keys:
        return "a learning-rate scheduler state (scheduler.pt of a checkpoint)"
    if {"python", "cpu"} <= keys:
        return "a random-number-generator state (rng_state.pth of a checkpoint)"
    if "output_dir" in keys and "learning_rate" in keys:
        return "training arguments (training_args.bin of a checkpoint)"
    if "scale" in keys and "growth_factor" in keys:
        return "a gradient scaler state (scaler.pt of a checkpoint)"
    return None


def reading_error(path, error, fix="write or download it again"):
    """One line explaining why `path` could not be read as a torch or safetensors file."""
    text = str(error)
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        return f"{path} is empty (0 bytes): it was cut short while being written or copied; {fix}"
    kind = sniff(path)
    found = _GLOBAL.search(text)
    if kind and not found:
        return f"{path} is {kind}, not a torch or safetensors checkpoint"
    if "Weights only load failed" in text:
        what = f" ({found.group(1)})" if found else ""
        return (f"{path} holds pickled Python objects{what}, not only tensors; they are never unpickled here since "
                "that could run code: pass a file of tensors (safetensors, or torch.save of a state dict)")
    detail = text.strip().splitlines()[0].split(". ")[0][:120] if text.strip() else "no detail"
    return f"{path} is truncated or damaged ({type(error).__name__}: {detail}): {fix}"


def torch_load(path, map_location="cpu", fix="write or download it again", allowed=()):
    """torch.load with weights_only=True; UnreadableCheckpoint (an OSError) with one line (see `reading_error`)
    when the file is missing, damaged, or holds anything but tensors, plain values and the `allowed` classes."""
    if not os.path.isfile(path):
        raise UnreadableCheckpoint(f"{path} does not exist")
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(list(allowed)):
            warnings.simplefilter("ignore", UserWarning)  # torch warns about pickle protocols before reading a file
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - every reader failure is reported the same way
        raise UnreadableCheckpoint(reading_error(path, e, fix)) from None

