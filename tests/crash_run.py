"""A small LoRA training run that tests/test_crash_safety.py interrupts in a subprocess.

    python crash_run.py OUT [MODE STEP]

Without MODE it trains to the end, resuming from the newest sound checkpoint in OUT when there is one. MODE picks
how the process dies at optimizer step STEP; every hook lives here, none in the package:
  step       SIGKILL at the end of step STEP (mid-epoch when STEP is not a save step)
  saved      SIGKILL right after checkpoint-STEP is complete
  writing    SIGKILL with half of checkpoint-STEP's optimizer.pt written
  renaming   SIGKILL with every file of checkpoint-STEP written, before the folder gets its final name
  disk_full  from step STEP on no file may grow past 256 bytes (a full disk: each writer's own error is raised)
"""
import io
import os
import resource
import signal
import sys

import numpy as np
import torch

from transformers import RobertaConfig, RobertaForSequenceClassification, Trainer, TrainerCallback, TrainingArguments
from transformers.lora import fork_trainable_rule
from transformers.trainer_utils import CheckpointSaveError, get_last_checkpoint

STEPS_PER_EPOCH, EPOCHS, SAVE_EVERY = 10, 3, 5


def data(n, seed):
    """Sequences of 12 token ids; the label says whether token 7 occurs (learnable by the tiny model)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 40, (n, 12), generator=g)
    return [{"input_ids": row, "attention_mask": torch.ones(12, dtype=torch.long), "labels": int((row == 7).any())}
            for row in ids]


def accuracy(pred):
    return {"accuracy": float((np.argmax(pred.predictions, axis=1) == pred.label_ids).mean())}


def make_trainer(out, callbacks=()):
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=16, type_vocab_size=1, num_labels=2,
                           apply_lora=True, lora_r=2, lora_alpha=4)  # dropout stays on: the RNG state matters
    model = fork_trainable_rule(RobertaForSequenceClassification(config), apply_lora=True)
    # saves at mid-epoch and epoch-end steps; losses logged every 3 steps, so a checkpoint can fall between logs
    args = TrainingArguments(
        output_dir=str(out), num_train_epochs=EPOCHS, per_device_train_batch_size=4, learning_rate=5e-3,
        warmup_ratio=0.1, weight_decay=0.1, logging_steps=3, evaluation_strategy="steps", eval_steps=SAVE_EVERY,
        save_steps=SAVE_EVERY, save_total_limit=2, load_best_model_at_end=True, metric_for_best_model="accuracy",
        seed=1, disable_tqdm=True, report_to="none")
    return Trainer(model=model, args=args, train_dataset=data(4 * STEPS_PER_EPOCH, 1), eval_dataset=data(16, 2),
                   compute_metrics=accuracy, callbacks=list(callbacks))


def die():
    os.kill(os.getpid(), signal.SIGKILL)


class At(TrainerCallback):
    def __init__(self, event, step, action):
        self.event, self.step, self.action = event, step, action

    def on_step_end(self, args, state, control, **kwargs):
        if self.event == "step" and state.global_step == self.step:
            self.action()

    def on_save(self, args, state, control, **kwargs):
        if self.event == "saved" and state.global_step == self.step:
            self.action()


def fill_disk():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG, as with ENOSPC
    resource.setrlimit(resource.RLIMIT_FSIZE, (256, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def install(mode, step):
    """The callbacks and patches that make this process die (or its disk fill up) at `step`."""
    tmp = f"tmp-checkpoint-{step}"
    if mode == "writing":
        real_save = torch.save

        def half_then_die(obj, f, *args, **kwargs):
            if isinstance(f, str) and f.endswith(os.path.join(f"checkpoint-{step}", "optimizer.pt")):
                buffer = io.BytesIO()
                real_save(obj, buffer, *args, **kwargs)
                with open(f, "wb") as out:
                    out.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
                die()
            return real_save(obj, f, *args, **kwargs)

        torch.save = half_then_die
    elif mode == "renaming":
        real_replace = os.replace

        def die_before_rename(src, dst, *args, **kwargs):
            if str(src).endswith(tmp):
                die()
            return real_replace(src, dst, *args, **kwargs)

        os.replace = die_before_rename
    else:
        return [At(mode if mode == "saved" else "step", step, fill_disk if mode == "disk_full" else die)]
    return []


def main(out, mode=None, step=None):
    torch.set_num_threads(1)
    callbacks = install(mode, int(step)) if mode else []
    trainer = make_trainer(out, callbacks)
    resume = os.path.isdir(out) and get_last_checkpoint(out) is not None
    try:
        result = trainer.train(resume_from_checkpoint=resume or None)
    except CheckpointSaveError as e:
        sys.exit(f"crash_run.py: error: {e}")
    trainer.save_model()
    trainer.save_state()
    trainer.save_metrics("train", result.metrics)
    trainer.save_metrics("eval", trainer.evaluate())


if __name__ == "__main__":
    main(*sys.argv[1:])
