"""run_glue_no_trainer.py (accelerate) on a tiny random RoBERTa with LoRA: it learns with only LoRA + head trained,
and two processes under torchrun (gloo) count each dev example once and end with the LoRA tensors of one process
that accumulates over the same global batch."""
import json
import logging
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(__file__))
from test_run_glue import EXAMPLES, LORA, _load, make_tiny  # noqa: E402

pytest.importorskip("accelerate")
no_trainer = _load("run_glue_no_trainer")
N_DEV = 33  # odd: two processes' shards differ in size, and nothing may count twice


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("no_trainer")
    texts = make_tiny.write_sst2_like(str(root / "SST-2"), 256, N_DEV, 7, seed=3)
    make_tiny.write_sst2_like(str(root / "one_step"), 16, N_DEV, 7, seed=4)  # 16 rows: one step of 2 x 8
    vocab = make_tiny.train_tokenizer(texts, str(root / "model"), vocab_size=400, model_max_length=64)
    make_tiny.make_model(str(root / "model"), vocab, hidden_size=64, heads=2, layers=2, max_seq_length=64)
    return root


def flags(tiny, data, out, batch, accumulation=1, epochs=5, lr=1e-2):
    return ["--model_name_or_path", str(tiny / "model"), "--task_name", "sst2", "--data_dir", str(tiny / data),
            "--output_dir", str(out), "--per_device_train_batch_size", str(batch), "--gradient_accumulation_steps",
            str(accumulation), "--per_device_eval_batch_size", "4", "--learning_rate", str(lr), "--num_train_epochs",
            str(epochs), "--seed", "0", *LORA]


def in_process(argv):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 64-wide model: threads only add overhead
    try:
        return no_trainer.main(argv)
    finally:
        torch.set_num_threads(threads)


def lora_of(folder):
    return torch.load(folder / "pytorch_model_lora.bin", weights_only=True)


def test_one_process_learns_training_only_lora_and_head(tiny, monkeypatch, caplog):
    optimized = []

    def recording_adamw(groups, **kwargs):  # what the script hands the optimizer is what trains
        optimized.extend(p for g in groups for p in g["params"])
        return torch.optim.AdamW(groups, **kwargs)

    monkeypatch.setattr(no_trainer, "AdamW", recording_adamw)
    out = tiny / "one"
    caplog.set_level(logging.INFO, logger=no_trainer.logger.name)
    results = in_process(flags(tiny, "SST-2", out, batch=16, epochs=8, lr=5e-3))

    log = [json.loads(r.getMessage().split(": ", 1)[1]) for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [e["epoch"] for e in log] == list(range(8))
    assert log[-1]["train_loss"] < 0.5 * log[0]["train_loss"]  # measured: 0.71 -> 0.17
    assert results["eval_accuracy"] >= 0.75 and results["eval_samples"] == N_DEV  # measured 0.82; chance ~0.5
    assert json.loads((out / "all_results.json").read_text()) == results

    lora = lora_of(out)
    assert lora and all("lora_" in k or k.startswith("classifier.") for k in lora)
    assert sum(p.numel() for p in optimized) == sum(t.numel() for t in lora.values())
    assert any(k.endswith("lora_B") and t.abs().max() > 0 for k, t in lora.items())  # trained: B starts at zero
    # the saved full model: frozen weights exactly as pretrained, LoRA tensors as in the LoRA file
    before, after = load_file(tiny / "model" / "model.safetensors"), load_file(out / "model.safetensors")
    for name, tensor in before.items():
        if not name.startswith("pooler."):
            assert torch.equal(after["roberta." + name], tensor), name
    assert all(torch.equal(after[k], v) for k, v in lora.items())


def test_two_processes_equal_one_with_accumulation(tiny):
    """16 training rows are one optimizer step per epoch for 2 processes x batch 8 and for 1 process x batch 8 x
    accumulation 2, so the data order cannot matter: the LoRA tensors must agree to float rounding."""
    single, double = tiny / "single", tiny / "double"
    one = in_process(flags(tiny, "one_step", single, batch=8, accumulation=2))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(EXAMPLES / "run_glue_no_trainer.py"), *flags(tiny, "one_step", double, batch=8)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    two = json.loads((double / "all_results.json").read_text())
    assert two["eval_samples"] == one["eval_samples"] == N_DEV  # the repeated padding examples are dropped
    assert two["eval_accuracy"] == one["eval_accuracy"]
    assert abs(two["train_loss"] - one["train_loss"]) < 1e-5
    a, b = lora_of(double), lora_of(single)
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    assert any(k.endswith("lora_B") and a[k].abs().max() > 0 for k in a)  # trained: B starts at zero
    assert (run.stdout + run.stderr).count("epoch 4:") == 1  # the main process alone reports


def test_bad_flags_fail_with_one_line(tiny, tmp_path, capsys):
    for argv, expected in (
        (["--lora_path", "x.bin"], "--lora_path needs --apply_lora"),
        (["--task_name", "nope"], "unknown task 'nope'"),
        (["--gradient_accumulation_steps", "0"], "must be at least 1, got 0"),
    ):
        base = ["--model_name_or_path", str(tiny / "model"), "--task_name", "sst2", "--data_dir", str(tiny / "SST-2")]
        with pytest.raises(SystemExit) as info:
            no_trainer.main([*base, *argv])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err
    with pytest.raises(SystemExit) as info:  # run_glue.py's data errors come out under this script's name
        no_trainer.main(["--model_name_or_path", str(tiny / "model"), "--task_name", "rte", "--data_dir",
                         str(tmp_path)])
    assert str(info.value.code).startswith("run_glue_no_trainer.py: error: ") and str(tmp_path) in info.value.code
