"""Same seed, same result, bit for bit, on CPU: two runs with evaluation every epoch and load_best_model_at_end write
the same weights, optimizer states, random states and metrics in every file; --use_deterministic_algorithms
reaches torch. Each comparison has a negative control: a run with another seed differs, so a seed that is ignored
(every run drawing the same numbers whatever --seed says) turns the tests red."""
import json
from pathlib import Path

import pytest
import torch

import test_run_glue as rg
from transformers.trainer_utils import CHECKPOINT_MANIFEST
from test_trainer import toy_train

work = rg.work  # the tiny RoBERTa and sst2-like data of the run_glue tests (module-scoped fixture)
# what legitimately differs between two runs: wall-clock figures and the run's own folder names
VARYING = ("_runtime", "_per_second", "output_dir", "logging_dir", "run_name", "best_model_checkpoint")


def stable(value):
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if not str(k).endswith(VARYING)}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def contents(folder):
    """Every file under `folder`, read: torch and json files as their objects without the varying fields, the
    rest as bytes."""
    out = {}
    for path in sorted(Path(folder).rglob("*")):
        # the manifest hashes files that hold the run's own folder name; the files themselves are compared
        if not path.is_file() or path.name == CHECKPOINT_MANIFEST:
            continue
        if path.suffix in (".bin", ".pt", ".pth"):
            value = stable(torch.load(path, weights_only=True))
        elif path.suffix == ".json":
            value = stable(json.loads(path.read_text()))
        else:
            value = path.read_bytes()
        out[str(path.relative_to(folder))] = value
    return out


def assert_same_folders(a, b):
    first, second = contents(a), contents(b)
    assert first.keys() == second.keys()
    for name in first:
        assert same(first[name], second[name]), name


def test_trainer_runs_with_eval_and_best_model_are_bit_identical(tmp_path):
    # dropout, shuffling and an evaluation + checkpoint every epoch; the best checkpoint is loaded at the end
    kw = dict(evaluation_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True, seed=7)
    runs = [toy_train(tmp_path / name, **kw) for name in ("a", "b")]
    assert runs[0].state.best_model_checkpoint.endswith(Path(runs[1].state.best_model_checkpoint).name)
    assert same(runs[0].model.state_dict(), runs[1].model.state_dict())
    assert stable(runs[0].state.log_history) == stable(runs[1].state.log_history)
    assert sum("eval_loss" in h for h in runs[0].state.log_history) == 3  # one evaluation per epoch
    assert_same_folders(tmp_path / "a", tmp_path / "b")
    other = toy_train(tmp_path / "c", **{**kw, "seed": 8})  # the comparison can fail: another seed shuffles otherwise
    assert not same(other.model.state_dict(), runs[0].model.state_dict())


@pytest.fixture
def restore_determinism():
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


def test_run_glue_runs_are_bit_identical_with_deterministic_algorithms(work, tmp_path, restore_determinism):
    args = ["--task_name", "sst2", "--data_dir", str(work["root"] / "sst2like"), "--do_train", "--do_eval", *rg.LORA,
            "--max_train_samples", "64", "--num_train_epochs", "2", "--evaluation_strategy", "epoch",
            "--save_strategy", "epoch", "--load_best_model_at_end", "--metric_for_best_model", "accuracy"]
    for name in ("a", "b"):
        torch.use_deterministic_algorithms(False)
        rg.run(work, tmp_path / name, *args, "--use_deterministic_algorithms")
        assert torch.are_deterministic_algorithms_enabled()  # the flag reached torch
    assert_same_folders(tmp_path / "a", tmp_path / "b")
    state = json.loads((tmp_path / "a" / "trainer_state.json").read_text())
    assert [h["step"] for h in state["log_history"] if "eval_accuracy" in h][:2] == [8, 16]  # each epoch, then final
    assert json.loads((tmp_path / "a" / "training_args.json").read_text())["use_deterministic_algorithms"] is True
    rg.run(work, tmp_path / "c", *args)
    assert not torch.are_deterministic_algorithms_enabled()  # and its absence too
    # the negative control: --seed 1 instead of 0 draws other LoRA A matrices, head and data order, so the weights,
    # the optimizer state and the logged losses differ (training_args.json would differ anyway: it records the seed)
    rg.run(work, tmp_path / "d", *args, "--use_deterministic_algorithms", "--seed", "1")
    first, other = contents(tmp_path / "a"), contents(tmp_path / "d")
    assert first.keys() == other.keys()
    differ = {name for name in first if not same(first[name], other[name])}
    assert {"pytorch_model_lora.bin", "model.safetensors", "checkpoint-8/optimizer.pt", "trainer_state.json"} <= differ
