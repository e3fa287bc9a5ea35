"""Crash safety (issue 12 item 2): a run killed with SIGKILL anywhere, or whose disk fills up during a save, is
started again and ends bit-identical to a run never interrupted; a damaged checkpoint is never resumed from.

The runs that die are tests/crash_run.py in a subprocess (30 steps, a checkpoint every 5, 10 steps an epoch); the
uninterrupted run and every resumed one run the same code in this process, which saves starting Python each time."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transformers.safe_loading import UnreadableCheckpoint
from transformers.trainer_utils import (
    CHECKPOINT_MANIFEST, checkpoint_problem, get_last_checkpoint, write_checkpoint_manifest,
)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import crash_run as driver  # noqa: E402

SPEED = ("_runtime", "_per_second")  # wall-clock figures differ between any two runs


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # the in-process runs set 1


def crash_run(out, mode, step):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(HERE / "crash_run.py"), str(out), mode, str(step)],
                          capture_output=True, text=True, env=env, timeout=300)


def outcome(out):
    """Everything a run leaves that must not depend on interruptions: weights, the last checkpoint's optimizer,
    schedule and random state, the loss/lr/eval history, the metrics files and which checkpoints were kept."""
    out = Path(out)
    tensors = {"model": out / "model.safetensors", **{f: out / "checkpoint-30" / f
                                                      for f in ("optimizer.pt", "scheduler.pt", "rng_state.pth")}}
    loaded = {k: load_file(p) if p.suffix == ".safetensors" else torch.load(p, weights_only=True)
              for k, p in tensors.items()}
    state = json.loads((out / "trainer_state.json").read_text())
    history = [{k: v for k, v in e.items() if not k.endswith(SPEED)} for e in state["log_history"]]
    metrics = {name: {k: v for k, v in json.loads((out / f"{name}_results.json").read_text()).items()
                      if not k.endswith(SPEED)} for name in ("train", "eval")}
    kept = sorted(p.name for p in out.iterdir() if "checkpoint" in p.name)
    return loaded, history, metrics, kept, Path(state["best_model_checkpoint"]).name


def assert_same(a, b):
    flat_a, flat_b = flatten(a), flatten(b)
    assert flat_a.keys() == flat_b.keys()
    for key, value in flat_a.items():
        other = flat_b[key]
        same = torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other
        assert same, key


def flatten(obj, prefix=""):
    if isinstance(obj, dict):
        return {k: v for key, item in obj.items() for k, v in flatten(item, f"{prefix}/{key}").items()}
    if isinstance(obj, (list, tuple)):
        return {k: v for i, item in enumerate(obj) for k, v in flatten(item, f"{prefix}/{i}").items()}
    return {prefix: obj}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("crash") / "uninterrupted"
    driver.main(out)
    return outcome(out)


# (how the first run dies, at which step, the checkpoint it leaves as newest sound one)
KILLS = {
    "mid-epoch": ("step", 17, "checkpoint-15"),
    "right after a save": ("saved", 20, "checkpoint-20"),
    "during a save": ("writing", 15, "checkpoint-10"),
    "before the rename": ("renaming", 25, "checkpoint-20"),
}


@pytest.mark.parametrize("point", list(KILLS))
def test_killed_run_resumes_bit_identical(tmp_path, reference, point):
    mode, step, newest = KILLS[point]
    out = tmp_path / "run"
    killed = crash_run(out, mode, step)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert Path(get_last_checkpoint(str(out))).name == newest
    driver.main(out)
    assert_same(outcome(out), reference)


def test_disk_full_during_a_save_keeps_the_previous_checkpoint(tmp_path, reference):
    out = tmp_path / "run"
    full = crash_run(out, "disk_full", 15)
    assert full.returncode == 1
    message = full.stderr.strip().splitlines()[-1]  # the writer's own error inside one line
    assert message.startswith("crash_run.py: error: could not write checkpoint-15 ("), full.stderr[-3000:]
    assert message.endswith(f"nothing of it was kept and {out / 'checkpoint-10'} is intact; make room on the disk "
                            "and run the same command again to resume")
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name) == ["checkpoint-10", "checkpoint-5"]
    previous = out / "checkpoint-10"  # every file as saved
    assert (previous / CHECKPOINT_MANIFEST).is_file() and checkpoint_problem(str(previous)) is None
    driver.main(out)  # room made: the same command resumes from checkpoint-10
    assert_same(outcome(out), reference)


def test_damaged_newest_checkpoint_is_passed_over(tmp_path, reference, caplog):
    out = tmp_path / "run"
    assert crash_run(out, "saved", 20).returncode == -9
    model = out / "checkpoint-20" / "model.safetensors"
    model.write_bytes(model.read_bytes()[:-100])  # truncated, as by a copy cut short
    driver.main(out)
    assert "checkpoint-20 is incomplete or damaged (model.safetensors holds" in caplog.text
    assert_same(outcome(out), reference)  # from checkpoint-15, to the same end


def manifested(folder, files):
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    write_checkpoint_manifest(str(folder))
    return folder


@pytest.mark.parametrize("damage, problem", [
    (lambda f: (f / "optimizer.pt").write_bytes(b"abcdef"), "optimizer.pt holds 6 bytes, 8 were saved"),
    (lambda f: (f / "optimizer.pt").write_bytes(b"abcdefgX"), "optimizer.pt differs from what was saved (sha256)"),
    (lambda f: (f / "sub" / "adapter.bin").unlink(), "sub/adapter.bin is missing"),
    (lambda f: (f / CHECKPOINT_MANIFEST).write_text('{"optim'), f"its {CHECKPOINT_MANIFEST} is unreadable"),
])
def test_checkpoint_problems_are_named(tmp_path, damage, problem, caplog):
    files = {"optimizer.pt": b"abcdefgh", "sub/adapter.bin": b"12"}
    older = manifested(tmp_path / "checkpoint-4", files)
    newer = manifested(tmp_path / "checkpoint-8", files)
    assert checkpoint_problem(str(newer)) is None and get_last_checkpoint(str(tmp_path)) == str(newer)
    damage(newer)
    assert checkpoint_problem(str(newer)) == problem
    assert get_last_checkpoint(str(tmp_path)) == str(older)
    assert f"{newer} is incomplete or damaged ({problem})" in caplog.text
    (older / "optimizer.pt").unlink()
    assert get_last_checkpoint(str(tmp_path)) is None


def test_older_checkpoints_without_a_manifest_are_trusted(tmp_path):
    (tmp_path / "checkpoint-3").mkdir()
    assert checkpoint_problem(str(tmp_path / "checkpoint-3")) is None
    assert get_last_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-3")


def test_resuming_an_explicit_damaged_checkpoint_fails_in_one_line(tmp_path):
    folder = manifested(tmp_path / "out" / "checkpoint-5", {"model.safetensors": b"0123456789"})
    (folder / "model.safetensors").write_bytes(b"01234")
    with pytest.raises(UnreadableCheckpoint) as info:
        driver.make_trainer(tmp_path / "out").train(resume_from_checkpoint=str(folder))
    assert str(info.value) == (f"{folder} is incomplete or damaged (model.safetensors holds 5 bytes, 10 were saved): "
                               "resume from an older checkpoint-N, or pass True to take the newest sound one")


def test_run_glue_refuses_an_output_dir_of_damaged_checkpoints_only(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "run_glue", HERE.parent / "examples" / "text-classification" / "run_glue.py")
    run_glue = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_glue)
    folder = manifested(tmp_path / "out" / "checkpoint-5", {"model.safetensors": b"0123456789"})
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(SystemExit) as info:
        run_glue.main(["--model_name_or_path", str(tmp_path / "none"), "--task_name", "sst2", "--do_train",
                       "--output_dir", str(tmp_path / "out")])
    assert str(info.value.code) == (f"run_glue.py: error: every checkpoint-N in {tmp_path / 'out'} is incomplete or "
                                    "damaged (see above): pass --overwrite_output_dir to start over")
