"""--fp16 counts the optimizer steps its GradScaler skipped (inf/nan gradients) in the log lines and the train metrics.

--fp16 needs CUDA, so on the CPU the Trainer's scaler is swapped for torch's CPU GradScaler: the same class and the
same skip rule, so the Trainer's counting is what is under test."""
import pytest
import torch
from torch import nn

from transformers import Trainer, TrainerCallback, TrainingArguments

# one row's loss is finite (1e34) but its gradient times the scale 2**16 overflows float32: that step is skipped
ROWS = [1.0, 1e34, 1.0, 1.0]


class Linear1(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x, labels=None):
        return {"loss": (self.w * x).sum(), "logits": self.w * x}


class Weights(TrainerCallback):
    def __init__(self):
        self.after_step = []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.after_step.append(model.w.item())


def train(tmp_path, scaler):
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=1, num_train_epochs=1,
                             logging_steps=1, learning_rate=0.1, save_strategy="no", report_to="none",
                             disable_tqdm=True)
    data = [{"x": torch.tensor([v]), "labels": 0} for v in ROWS]
    weights = Weights()
    trainer = Trainer(model=Linear1(), args=args, train_dataset=data, callbacks=[weights])
    if scaler:
        trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    torch.manual_seed(0)
    metrics = trainer.train().metrics
    steps = [log for log in trainer.state.log_history if "loss" in log]
    return metrics, steps, weights.after_step


def test_skipped_steps_are_counted_in_the_log_and_the_metrics(tmp_path):
    metrics, steps, weights = train(tmp_path, scaler=True)
    counts = [s["fp16_skipped_steps"] for s in steps]  # the total so far, in each step's log line
    jump = counts.index(1)  # the step that met the overflowing row (the order is shuffled)
    assert counts == [0] * jump + [1] * (len(ROWS) - jump)
    assert metrics["train_fp16_skipped_steps"] == 1
    before = [1.0] + weights[:-1]
    assert weights[jump] == before[jump]  # the skipped step left the weight as it was
    assert all(w != b for i, (w, b) in enumerate(zip(weights, before)) if i != jump)  # every other step moved it


def test_without_loss_scaling_no_skip_count_is_logged(tmp_path):
    # no GradScaler, nothing to count: neither the step log lines nor the train metrics carry the field
    metrics, steps, _ = train(tmp_path, scaler=False)
    assert all("fp16_skipped_steps" not in s for s in steps) and "train_fp16_skipped_steps" not in metrics


@pytest.mark.skipif(not torch.cuda.is_available(), reason="--fp16 needs CUDA")
def test_fp16_on_cuda_builds_the_scaler(tmp_path):
    trainer = Trainer(model=Linear1(), args=TrainingArguments(output_dir=str(tmp_path), fp16=True, report_to="none"))
    assert isinstance(trainer.scaler, torch.amp.GradScaler)
