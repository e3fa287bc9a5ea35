"""What a person sees of a run: a short run_glue.py run captured as a log file (stdout and stderr not a terminal),
its TensorBoard files, and scripts/plot_curves.py on its trainer_state.json."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_run_glue import EXAMPLES, LORA, ROOT, make_tiny  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import plot_curves  # noqa: E402

STEPS = 24  # 96 rows / batch 8 x 2 epochs: shorter than the default --logging_steps 500


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("logs")
    texts = make_tiny.write_sst2_like(str(root / "SST-2"), 96, 24, 4)
    vocab = make_tiny.train_tokenizer(texts, str(root / "model"), vocab_size=400, model_max_length=64)
    make_tiny.make_model(str(root / "model"), vocab, hidden_size=32, heads=2, layers=2, max_seq_length=64)
    out = root / "out"
    cwd = root / "cwd"
    cwd.mkdir()
    argv = [sys.executable, str(EXAMPLES / "run_glue.py"), "--model_name_or_path", str(root / "model"),
            "--task_name", "sst2", "--data_dir", str(root / "SST-2"), "--output_dir", str(out), "--do_train",
            "--do_eval", "--per_device_train_batch_size", "8", "--num_train_epochs", "2", "--learning_rate", "1e-2",
            "--evaluation_strategy", "epoch", "--seed", "0", *LORA]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return {"out": out, "cwd": cwd, "log": done.stdout + done.stderr}


def test_the_log_reads_like_a_report(run):
    log = run["log"]
    assert "\x1b" not in log  # no terminal escape codes in a file
    # the default interval (500) exceeds the run: it logs about ten times instead, and says so
    assert f"logging every 2 steps: the run has {STEPS} optimizer steps, fewer than --logging_steps 500" in log
    losses = re.findall(r"^step (\d+)/24 \| loss (\d\.\d+) \| learning_rate ([\d.e-]+) \| epoch [\d.]+$",
                        log.replace("\r", "\n"), re.M)
    assert [int(s) for s, _, _ in losses] == list(range(2, STEPS + 1, 2))
    assert all(len(loss.split(".")[1]) <= 4 for _, loss, _ in losses)  # 4 significant digits, not 16
    assert float(losses[-1][1]) < float(losses[0][1])  # and it learns
    # metrics as an aligned table: one "name value" row per metric, values in one column
    table = re.search(r"eval metrics:\n((?:  \S+ +\S+\n)+)", log.replace("\r", "\n"))
    assert table, log[-2000:]
    rows = table.group(1).splitlines()
    assert {r.split()[0] for r in rows} >= {"eval_accuracy", "eval_loss", "eval_samples"}
    assert len({len(r) - len(r.split()[-1]) for r in rows}) == 1  # every value starts in the same column
    assert "'loss':" not in log and "{'" not in log  # no raw dicts


def test_tensorboard_goes_under_output_dir(run):
    folders = list((run["out"] / "runs").iterdir())
    assert len(folders) == 1  # one run folder (the evaluation after training may add a second event file to it)
    data = b"".join(p.read_bytes() for p in folders[0].glob("events.out.tfevents.*"))
    for tag in (b"loss", b"learning_rate", b"eval_accuracy", b"eval_loss"):  # scalars, tags stored as plain bytes
        assert tag in data
    assert not (run["cwd"] / "runs").exists()  # 4.4.2 wrote ./runs wherever the command was started


def test_plot_curves_from_a_real_trainer_state(run, tmp_path):
    pytest.importorskip("matplotlib")
    state = json.loads((run["out"] / "trainer_state.json").read_text())
    curves = plot_curves.read_curves(str(run["out"] / "trainer_state.json"))
    logged = [e for e in state["log_history"] if "loss" in e]
    assert curves["loss"] == ([e["step"] for e in logged], [e["loss"] for e in logged])
    assert curves["eval_accuracy"][0] == [12, 24]  # one evaluation per epoch
    png = tmp_path / "c.png"
    plot_curves.main([str(run["out"]), str(run["out"] / "trainer_state.json"), "--out", str(png)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_plot_curves_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        plot_curves.main([str(tmp_path), "--out", str(tmp_path / "c.png")])
    assert "no trainer_state.json there" in str(info.value.code)
    assert not (tmp_path / "c.png").exists()
