"""Nothing read from outside runs code, and a wrong file says what it is.

Hostile pickles are refused in these places run_glue.py reads a torch file: --lora_path, --adapter_path, a model
folder's pytorch_model.bin, and the four torch files that resuming a Trainer checkpoint reads (pytorch_model.bin,
optimizer.pt, scheduler.pt, rng_state.pth; the checkpoint's other torch files are shown never to be opened).
A DeepSpeed checkpoint's engine files are not covered here. Also: the torch files a Trainer checkpoint holds load
with torch.load(weights_only=True), and --lora_path given something other than LoRA weights says what it was given."""
import os
import random
import re
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import test_run_glue as rg
from transformers.checkpointing import capture_rng_state, restore_rng_state
from transformers.safe_loading import torch_load
from transformers.trainer_utils import write_checkpoint_manifest

work = rg.work  # the tiny RoBERTa and sst2-like data of the run_glue tests (module-scoped fixture)
run, error_of = rg.run, rg.error_of
LORA = rg.LORA


class Payload:
    """Unpickling this creates the file `marker`: a stand-in for whatever a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def write_payload(path, marker):
    torch.save({"classifier.dense.weight": torch.zeros(2), "x": Payload(marker)}, path)


@pytest.fixture(scope="module")
def lora_run(work):
    """One short LoRA run (2 steps, a checkpoint at step 2) on the sst2-like data. Its checkpoint holds the whole
    model (--save_trainable_only false) beside the optimizer, scheduler and random state, the files a resumed run
    reads."""
    out = work["root"] / "safe_lora_run"
    data = str(work["root"] / "sst2like")
    run(work, out, "--task_name", "sst2", "--data_dir", data, "--do_train", "--max_steps", "2",
        "--save_strategy", "steps", "--save_steps", "2", "--save_trainable_only", "false", *LORA)
    return {"out": out, "data": data}


def test_the_payload_runs_under_a_full_unpickler(tmp_path):
    # the refusals below mean something only if this file would really act when unpickled
    marker = tmp_path / "marker"
    write_payload(tmp_path / "evil.bin", marker)
    torch.load(tmp_path / "evil.bin", weights_only=False)
    assert marker.exists()


def assert_refused(message, path, marker):
    assert str(path) in message, message
    assert re.search(r"holds pickled Python objects \([\w.]+\), not only tensors; they are never unpickled", message)
    assert not os.path.exists(marker)


@pytest.mark.parametrize("place", ["lora_path", "adapter_path", "model weights"])
def test_hostile_pickle_is_refused(work, lora_run, tmp_path, place):
    marker, evil = tmp_path / "marker", tmp_path / "evil.bin"
    write_payload(evil, marker)
    flags = ["--task_name", "sst2", "--data_dir", lora_run["data"], "--do_eval"]
    if place == "lora_path":
        flags += [*LORA, "--lora_path", str(evil)]
    elif place == "adapter_path":
        flags += ["--apply_adapter", "--adapter_size", "4", "--adapter_path", str(evil)]
    else:  # a model folder whose weights are the payload
        model = tmp_path / "model"
        shutil.copytree(work["model"], model)
        os.remove(model / "model.safetensors")
        evil = model / "pytorch_model.bin"
        write_payload(evil, marker)
        flags += ["--model_name_or_path", str(model)]
    message = error_of(work, tmp_path / "out", *flags)
    assert_refused(message, evil, marker)
    assert not (tmp_path / "out").exists()


CHECKPOINT_FILES_READ = ["pytorch_model.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth"]
CHECKPOINT_FILES_NOT_READ = ["training_args.bin", "pytorch_model_lora.bin", "pytorch_model_adapter.bin"]


@pytest.mark.parametrize("name", CHECKPOINT_FILES_READ + CHECKPOINT_FILES_NOT_READ)
def test_hostile_file_in_a_resumed_checkpoint(work, lora_run, tmp_path, name):
    out = tmp_path / "out"
    shutil.copytree(lora_run["out"], out)
    ckpt = out / "checkpoint-2"
    if name == "pytorch_model.bin":  # torch weights are read when there is no safetensors file
        os.remove(ckpt / "model.safetensors")
    marker = tmp_path / "marker"
    write_payload(ckpt / name, marker)
    write_checkpoint_manifest(str(ckpt))  # a crafted checkpoint comes with a manifest that matches it
    before = sorted(p.name for p in out.iterdir())
    argv = ["--model_name_or_path", work["model"], "--output_dir", str(out), "--task_name", "sst2", "--data_dir",
            lora_run["data"], "--do_train", "--max_steps", "3", "--per_device_train_batch_size", "8",
            "--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no", *LORA]
    if name in CHECKPOINT_FILES_READ:
        with pytest.raises(SystemExit) as info:
            rg.run_glue.main(argv)
        message = str(info.value.code)
        assert "\n" not in message and message.startswith("run_glue.py: error: ")
        assert_refused(message, ckpt / name, marker)
        assert sorted(p.name for p in out.iterdir()) == before  # the checkpoint stays; nothing new is written
    else:  # resuming never opens it: training goes on from step 2
        rg.run_glue.main(argv)
        assert not marker.exists()
        assert '"global_step": 3' in (out / "trainer_state.json").read_text()


def test_checkpoint_files_need_no_full_unpickler(lora_run):
    ckpt = lora_run["out"] / "checkpoint-2"
    pickled = [p for p in ckpt.iterdir() if p.suffix in (".bin", ".pt", ".pth")]
    assert {p.name for p in pickled} >= {"optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin",
                                         "pytorch_model_lora.bin"}
    for path in pickled:
        torch.load(path, weights_only=True)  # raises on any pickled object besides tensors and plain values
    assert torch.load(ckpt / "training_args.bin", weights_only=True)["max_steps"] == 2


def test_rng_state_round_trip(tmp_path):
    """The saved random state (tensors and numbers) gives back the python, numpy and torch streams exactly."""
    epoch_begin = torch.get_rng_state()
    random.gauss(0, 1)  # leaves a cached gaussian in python's state
    np.random.standard_normal()
    torch.save(capture_rng_state(epoch_begin), tmp_path / "rng_state.pth")
    draws = (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), np.random.standard_normal(),
             torch.rand(3).tolist())
    restore_rng_state(torch_load(tmp_path / "rng_state.pth"))
    assert (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), np.random.standard_normal(),
            torch.rand(3).tolist()) == draws


# -- --lora_path given something else ---------------------------------------------------------------------------------
def lora_path_cases(work, lora_run, folder):
    """name -> (path, the start of what the error must say after the path)."""
    out, model = lora_run["out"], work["model"]
    full = load_file(out / "model.safetensors")
    torch.save(full, folder / "pytorch_model.bin")
    base = load_file(os.path.join(model, "model.safetensors"))
    save_file({k.split(".", 1)[1]: v for k, v in base.items()}, folder / "bare_backbone.safetensors")
    lora = load_file(out / "model_lora.safetensors")
    frozen = next(k for k in full if k.endswith("attention.self.query.weight"))
    torch.save({**lora, frozen: full[frozen]}, folder / "lora_plus_backbone.bin")
    (folder / "empty.bin").write_bytes(b"")
    for name in ("pytorch_model_lora.bin", "model_lora.safetensors"):
        data = (out / name).read_bytes()
        (folder / f"truncated_{name}").write_bytes(data[: len(data) // 2])
    (folder / "empty_dir").mkdir()
    full_model = "is the full model of a LoRA run"
    return {
        "full model safetensors": (out / "model.safetensors", full_model),
        "full model bin": (folder / "pytorch_model.bin", full_model),
        "base model": (os.path.join(model, "model.safetensors"), "is a model without LoRA tensors"),
        "base model, bare keys": (folder / "bare_backbone.safetensors", "is a model without LoRA tensors"),
        "LoRA + a frozen tensor": (folder / "lora_plus_backbone.bin", ": holds 1 frozen backbone tensor(s)"),
        "config.json": (out / "config.json", "is a model config (config.json), not LoRA weights: pass"),
        "adapter_config.json": (out / "peft_adapter" / "adapter_config.json",
                                "is the config of a PEFT adapter, not LoRA weights: pass its folder"),
        "tokenizer vocab.json": (os.path.join(model, "vocab.json"), "is a tokenizer file"),
        "tokenizer merges.txt": (os.path.join(model, "merges.txt"), "is a tokenizer file"),
        "trainer_state.json": (out / "trainer_state.json", "is a trainer state"),
        "training_args.bin": (out / "training_args.bin", "holds training arguments"),
        "optimizer.pt": (out / "checkpoint-2" / "optimizer.pt", "holds an optimizer state"),
        "model folder": (model, "is a model folder without LoRA files"),
        "empty folder": (folder / "empty_dir", "is an empty folder"),
        "empty file": (folder / "empty.bin", "is empty (0 bytes)"),
        "truncated bin": (folder / "truncated_pytorch_model_lora.bin", "is truncated or damaged"),
        "truncated safetensors": (folder / "truncated_model_lora.safetensors", "is truncated or damaged"),
        "absent": (folder / "absent.bin", "does not exist"),
    }


CASES = ["full model safetensors", "full model bin", "base model", "base model, bare keys", "LoRA + a frozen tensor",
         "config.json", "adapter_config.json", "tokenizer vocab.json", "tokenizer merges.txt", "trainer_state.json",
         "training_args.bin", "optimizer.pt", "model folder", "empty folder", "empty file", "truncated bin",
         "truncated safetensors", "absent"]


@pytest.fixture(scope="module")
def lora_paths(work, lora_run, tmp_path_factory):
    return lora_path_cases(work, lora_run, tmp_path_factory.mktemp("lora_paths"))


@pytest.mark.parametrize("case", CASES)
def test_lora_path_says_what_it_was_given(work, lora_run, lora_paths, tmp_path, case):
    path, says = lora_paths[case]
    message = error_of(work, tmp_path / "out", "--task_name", "sst2", "--data_dir", lora_run["data"], "--do_eval",
                       *LORA, "--lora_path", str(path))
    assert message.startswith(f"run_glue.py: error: {path}{'' if says.startswith(':') else ' '}{says}"), message
    assert re.search(r"\b(pass|give)\b|download it again$", message), message  # and what to do instead
    assert not (tmp_path / "out").exists()


def test_lora_path_accepts_the_run_s_own_files(work, lora_run, tmp_path):
    out = lora_run["out"]
    for path in (out / "pytorch_model_lora.bin", out / "model_lora.safetensors", out, out / "peft_adapter"):
        run(work, tmp_path / "out", "--task_name", "sst2", "--data_dir", lora_run["data"], "--do_eval",
            "--max_val_samples", "4", *LORA, "--lora_path", str(path))
