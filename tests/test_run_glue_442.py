"""run_glue.py end to end against transformers 4.4.2 with the fork's LoRA layer: the LoRA recipe of the fork's
roberta_*.sh scripts (shuffled batches, dropout on, epoch evaluation and checkpoints, the best one loaded back at the
end), scaled down to a tiny random RoBERTa on 40 RTE-layout pairs for 4 epochs of 5 steps.

Fixture: tests/fixtures/make_training_fixtures.py run_glue (4.4.2 oracle venv), which walks 4.4.2's run_glue.py
steps on the same files. Both sides draw every random number from the seed in the same order (LoRA A and the head at
model construction, one shuffle per epoch, the dropout masks), so everything but float summation order is equal:
- the tokenized training set, the initial LoRA and head tensors and each evaluation's accuracy: exactly;
- raw per-batch losses, eval losses and the final LoRA + head tensors: 1e-5 (float32 through 2 layers and 20 AdamW
  steps, the attention in another but equivalent op order, as tests/test_trainer.py's parity run);
- logged losses, rounded to 4 decimals by both: one unit of the last place; learning rates (same closed form): 1e-12.
"""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

import transformers

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "training" / "run_glue_lora"
SPEED = ("_runtime", "_per_second")


def load_run_glue():
    spec = importlib.util.spec_from_file_location("run_glue", ROOT / "examples" / "text-classification" / "run_glue.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    """Our run_glue.py on the fixture's files and settings, recording what the oracle recorded."""
    run_glue = load_run_glue()
    spec = json.loads((FIXTURE / "args.json").read_text())
    seen = {"raw_losses": []}

    class Recording(transformers.Trainer):
        def train(self, *args, **kwargs):
            seen["train_ids"] = [[row["input_ids"], row["label"]] for row in self.train_dataset]
            seen["init"] = {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
            return super().train(*args, **kwargs)

        def training_step(self, model, inputs):
            loss = super().training_step(model, inputs)
            seen["raw_losses"].append(loss.item())
            return loss

    out = tmp_path_factory.mktemp("run_glue_442")
    argv = ["--model_name_or_path", str(FIXTURE / "base"), "--task_name", spec["task_name"],
            "--data_dir", str(FIXTURE / "RTE"), "--output_dir", str(out), "--do_train", "--do_eval",
            "--max_seq_length", str(spec["max_seq_length"]), "--apply_lora", "--lora_r", str(spec["lora_r"]),
            "--lora_alpha", str(spec["lora_alpha"]), "--report_to", "none", "--disable_tqdm", "true"]
    for name, value in spec["training"].items():
        argv += [f"--{name}", str(value).lower() if isinstance(value, bool) else str(value)]
    torch.set_num_threads(1)  # a 32-wide model: threads only add overhead
    with pytest.MonkeyPatch.context() as patch:  # main() imports its Trainer from transformers
        patch.setattr(transformers, "Trainer", Recording)
        run_glue.main(argv)
    seen["state"] = json.loads((out / "trainer_state.json").read_text())
    seen["final"] = torch.load(out / "pytorch_model_lora.bin", weights_only=True)
    seen["eval"] = json.loads((out / "eval_results.json").read_text())
    return seen


@pytest.fixture(scope="module")
def oracle():
    return json.loads((FIXTURE / "result.json").read_text())


def test_same_examples_and_same_initial_lora_and_head(ours):
    assert ours["train_ids"] == json.loads((FIXTURE / "train_ids.json").read_text())
    expected = torch.load(FIXTURE / "init_trainable.pt", weights_only=True)
    assert set(ours["init"]) == set(expected)  # LoRA A/B of query and value, and the head
    for name, value in expected.items():  # LoRA A drawn in the fork's order, the head after the whole model
        assert torch.equal(ours["init"][name], value), name


def test_every_step_and_evaluation_as_442(ours, oracle):
    assert len(ours["raw_losses"]) == len(oracle["raw_losses"]) == 20
    assert max(abs(a - b) for a, b in zip(ours["raw_losses"], oracle["raw_losses"])) < 1e-5
    history = [h for h in ours["state"]["log_history"] if "train_runtime" not in h]
    expected = [h for h in oracle["log_history"] if "train_runtime" not in h]
    assert [sorted(k for k in h if not k.endswith(SPEED)) for h in history] == \
           [sorted(k for k in h if not k.endswith(SPEED)) for h in expected]
    for a, b in zip(history, expected):
        assert (a["step"], a["epoch"]) == (b["step"], b["epoch"])
        if "loss" in b:
            assert abs(a["loss"] - b["loss"]) <= 1e-4 + 1e-9 and abs(a["learning_rate"] - b["learning_rate"]) < 1e-12
        if "eval_loss" in b:
            assert abs(a["eval_loss"] - b["eval_loss"]) < 1e-5 and a["eval_accuracy"] == b["eval_accuracy"]


def test_best_checkpoint_is_loaded_back_as_442(ours, oracle):
    # the oracle's best is not its last epoch, so the final tensors tell the loaded-back model from the last one
    assert oracle["best_model_checkpoint"] == "checkpoint-15"
    assert Path(ours["state"]["best_model_checkpoint"]).name == oracle["best_model_checkpoint"]
    expected = torch.load(FIXTURE / "final_trainable.pt", weights_only=True)
    assert set(ours["final"]) == set(expected)
    for name, value in expected.items():
        assert (ours["final"][name] - value).abs().max().item() < 1e-5, name
    assert abs(ours["eval"]["eval_loss"] - oracle["final_eval"]["eval_loss"]) < 1e-5
    assert ours["eval"]["eval_accuracy"] == oracle["final_eval"]["eval_accuracy"]
