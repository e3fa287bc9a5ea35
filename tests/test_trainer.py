"""Trainer: parity with transformers 4.4.2 on a LoRA RoBERTa run, checkpoints, resume, rotation, metrics files.

Parity fixture (tests/fixtures/make_training_fixtures.py, 4.4.2 oracle venv): a tiny random
RobertaForSequenceClassification with LoRA (r=4, alpha=8) on query/value, everything but LoRA and the classifier
frozen, trained 30 optimizer steps by 4.4.2's Trainer in a fixed data order with gradient accumulation 2 over 13
batches per epoch (so each epoch's odd batch is accumulated into the next epoch's first step), warmup_ratio,
weight decay, clipping, evaluation every 10 steps. We load the same initial weights into our model and train with the
same arguments.
Tolerances: raw per-batch losses, eval losses and final trainable weights agree to 1e-5 (float32 forward/backward
through 2 layers and 30 AdamW steps in a different but equivalent op order; observed <= 2e-7). Logged losses are
rounded to 4 decimals by both sides, so they may differ by one unit of the last place: 1e-4 (+ float slack).
Learning rates come from the same closed form: 1e-12.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import SequentialSampler

from transformers import RobertaConfig, RobertaForSequenceClassification
from transformers.data.data_collator import DataCollatorWithPadding, default_data_collator
from transformers.lora import lora_state_dict, mark_only_lora_as_trainable
from transformers.data.samplers import LengthGroupedSampler
from transformers.trainer import Trainer
from transformers.trainer_callback import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
from transformers.training_args import TrainingArguments

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fixtures"))
from fixture_io import Rows  # noqa: E402

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "training" / "lora_run"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


class SequentialTrainer(Trainer):
    """Fixed data order, and a record of every micro-batch loss (as the oracle script does)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.raw_losses = []

    def _get_train_sampler(self):
        return SequentialSampler(self.train_dataset)

    def training_step(self, model, inputs):
        loss = super().training_step(model, inputs)
        self.raw_losses.append(loss.item() * self.args.gradient_accumulation_steps)
        return loss


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    spec = json.loads((FIXTURE / "args.json").read_text())
    model = RobertaForSequenceClassification(RobertaConfig(**spec["model"], apply_lora=True, **spec["lora"]))
    state = torch.load(FIXTURE / "init_state.pt", weights_only=True)
    state.pop("roberta.embeddings.position_ids")  # 4.4.2 keeps a constant arange buffer we do not
    model.load_state_dict(state)
    mark_only_lora_as_trainable(model)
    data = torch.load(FIXTURE / "data.pt", weights_only=True)
    out = tmp_path_factory.mktemp("lora_run")
    # checkpoints every 15 steps do not change the numbers; they let the checkpoint tests inspect a real LoRA run
    args = TrainingArguments(output_dir=str(out), report_to="none", disable_tqdm=True,
                             **{**spec["args"], "save_steps": 15})
    trainer = SequentialTrainer(model=model, args=args, train_dataset=Rows(data["train"]),
                                eval_dataset=Rows(data["eval"]))
    result = trainer.train()
    final_eval = trainer.evaluate()
    return trainer, result, final_eval, json.loads((FIXTURE / "result.json").read_text())


def test_lora_run_matches_442(lora_run):
    trainer, result, final_eval, ref = lora_run
    assert np.abs(np.array(trainer.raw_losses) - np.array(ref["raw_losses"])).max() < 1e-5
    ours = [h for h in trainer.state.log_history if "train_runtime" not in h]
    theirs = [h for h in ref["log_history"] if "train_runtime" not in h]
    assert [sorted(k for k in h if "runtime" not in k and "per_second" not in k) for h in ours] == \
           [sorted(k for k in h if "runtime" not in k and "per_second" not in k) for h in theirs]
    for a, b in zip(ours, theirs):
        assert (a["step"], a["epoch"]) == (b["step"], b["epoch"])
        if "loss" in b:
            assert abs(a["loss"] - b["loss"]) <= 1e-4 + 1e-9
            assert abs(a["learning_rate"] - b["learning_rate"]) < 1e-12
        if "eval_loss" in b:
            assert abs(a["eval_loss"] - b["eval_loss"]) < 1e-5
    assert (result.global_step, trainer.state.max_steps, trainer.state.num_train_epochs) == \
           (ref["global_step"], ref["max_steps"], ref["num_train_epochs"])
    assert abs(result.training_loss - ref["training_loss"]) < 1e-5
    assert abs(final_eval["eval_loss"] - ref["final_eval"]["eval_loss"]) < 1e-5
    expected = torch.load(FIXTURE / "final_trainable.pt", weights_only=True)
    params = dict(trainer.model.named_parameters())
    assert set(expected) == {n for n, p in params.items() if p.requires_grad}
    for name, value in expected.items():
        assert (params[name].detach() - value).abs().max().item() < 1e-5, name


def test_lora_checkpoint_contents(lora_run):
    trainer, *_ = lora_run
    out = Path(trainer.args.output_dir)
    assert sorted(os.listdir(out)) == ["checkpoint-15", "checkpoint-30"]
    ckpt = out / "checkpoint-30"
    for name in ["config.json", "model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json",
                 "rng_state.pth", "training_args.bin", "pytorch_model_lora.bin", "model_lora.safetensors"]:
        assert (ckpt / name).is_file(), name
    lora = torch.load(ckpt / "pytorch_model_lora.bin", weights_only=True)
    expected = lora_state_dict(trainer.model)  # the model after step 30 is what checkpoint-30 holds
    assert set(lora) == set(expected) and any("lora_A" in k for k in lora) and "classifier.out_proj.weight" in lora
    assert not any(k.startswith("roberta.") and "lora_" not in k for k in lora)  # no frozen backbone tensors
    safe = load_file(ckpt / "model_lora.safetensors")
    for k in expected:
        assert torch.equal(lora[k], expected[k]) and torch.equal(safe[k], expected[k])
    full = load_file(ckpt / "model.safetensors")
    assert torch.equal(full["classifier.out_proj.weight"], expected["classifier.out_proj.weight"])
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["global_step"] == 30 and state["max_steps"] == 30
    # log -> evaluate -> save: step 30's loss and its evaluation are both in the checkpoint's history
    assert [set(h) & {"loss", "eval_loss"} for h in state["log_history"][-2:]] == [{"loss"}, {"eval_loss"}]
    assert state["log_history"][-1]["step"] == 30
    rng = torch.load(ckpt / "rng_state.pth", weights_only=True)  # tensors and plain numbers: no pickled objects
    assert {"python", "numpy", "cpu"} <= set(rng)
    args = torch.load(ckpt / "training_args.bin", weights_only=True)
    assert args == json.loads((ckpt / "training_args.json").read_text()) == trainer.args.to_dict()
    assert TrainingArguments(**args).learning_rate == trainer.args.learning_rate
    trainer.save_model(str(out / "final"))
    assert (out / "final" / "pytorch_model_lora.bin").is_file() and (out / "final" / "model_lora.safetensors").is_file()


# ---------------------------------------------------------------------------------------------------------------
# a toy model: embeddings, LayerNorm, dropout (so RNG matters) and a classifier
class Toy(nn.Module):
    def __init__(self, vocab=20, dim=8, labels=3):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.LayerNorm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(0.2)
        self.classifier = nn.Linear(dim, labels)

    def forward(self, input_ids=None, labels=None):
        logits = self.classifier(self.drop(self.LayerNorm(self.emb(input_ids).mean(1))))
        out = {"logits": logits}
        if labels is not None:
            out = {"loss": nn.functional.cross_entropy(logits, labels), **out}
        return out


def toy_data(n=37, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(0, 20, (5,), generator=g), "label": i % 3} for i in range(n)]


def toy_args(out, **kw):
    base = dict(output_dir=str(out), num_train_epochs=3, per_device_train_batch_size=4, learning_rate=1e-2,
                logging_steps=2, save_steps=4, weight_decay=0.1, warmup_ratio=0.1, disable_tqdm=True,
                report_to="none")
    return TrainingArguments(**{**base, **kw})


class StopAt(TrainerCallback):
    """Simulates an interrupted run: stops training right after step `step` (and its checkpoint)."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def toy_train(out, resume=None, callbacks=None, **kw):
    torch.manual_seed(123)
    trainer = Trainer(model=Toy(), args=toy_args(out, **kw), train_dataset=toy_data(), eval_dataset=toy_data(10, 1),
                      callbacks=callbacks)
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def test_resume_gives_same_final_weights(tmp_path):
    """Shuffled data, dropout and gradient accumulation: resuming mid-epoch or at an epoch boundary must land on
    exactly the weights of the uninterrupted run (optimizer, schedule, RNG streams and data position restored)."""
    kw = dict(gradient_accumulation_steps=2, save_steps=5, evaluation_strategy="steps", eval_steps=3)
    full = toy_train(tmp_path / "full", **kw)  # 10 batches/epoch -> 5 updates/epoch, 15 in all
    reference = full.model.state_dict()
    for ckpt in ["checkpoint-5", "checkpoint-10", "checkpoint-15"]:
        assert (tmp_path / "full" / ckpt).is_dir()
    for ckpt in ["checkpoint-5", "checkpoint-10"]:  # both sit at epoch boundaries
        resumed = toy_train(tmp_path / f"from_{ckpt}", resume=str(tmp_path / "full" / ckpt), **kw)
        assert resumed.state.global_step == 15
        for k, v in resumed.model.state_dict().items():
            assert torch.equal(v, reference[k]), (ckpt, k)
    # mid-epoch (7 batches into an epoch of 10); also resume_from_checkpoint=True finds the last checkpoint
    mid = toy_train(tmp_path / "mid", gradient_accumulation_steps=1, save_steps=17, callbacks=[StopAt(17)])
    assert get_last_checkpoint(str(tmp_path / "mid")).endswith("checkpoint-17")
    full = toy_train(tmp_path / "mid_full", gradient_accumulation_steps=1, save_steps=17)
    resumed = toy_train(tmp_path / "mid", resume=True, gradient_accumulation_steps=1, save_steps=17)
    assert resumed.state.global_step == full.state.global_step == 30 and mid.state.global_step == 17
    for k, v in resumed.model.state_dict().items():
        assert torch.equal(v, full.model.state_dict()[k]), k
    # the check has teeth: without fast-forwarding the data and RNG the run ends elsewhere
    skipless = toy_train(tmp_path / "mid", resume=str(tmp_path / "mid" / "checkpoint-17"),
                         gradient_accumulation_steps=1, save_steps=17, ignore_data_skip=True)
    assert not torch.equal(skipless.model.classifier.weight, full.model.classifier.weight)


def test_data_seed_resume_mid_epoch_keeps_the_order(tmp_path):
    """With --data_seed the order comes from (data_seed, epoch), not from the torch RNG: a run resumed 7 batches
    into an epoch ends on the weights of the run that went through, and another data_seed gives another order."""
    kw = dict(gradient_accumulation_steps=1, save_steps=17, data_seed=3)
    toy_train(tmp_path / "mid", callbacks=[StopAt(17)], **kw)
    full = toy_train(tmp_path / "full", **kw)
    resumed = toy_train(tmp_path / "mid", resume=True, **kw)
    assert resumed.state.global_step == full.state.global_step == 30
    for k, v in resumed.model.state_dict().items():
        assert torch.equal(v, full.model.state_dict()[k]), k
    other = toy_train(tmp_path / "other", **{**kw, "data_seed": 4})
    assert not torch.equal(other.model.classifier.weight, full.model.classifier.weight)


class ScriptedMetric:
    """compute_metrics returning a preset sequence of scores, so the best checkpoint is known in advance."""

    def __init__(self, scores):
        self.scores = list(scores)

    def __call__(self, pred):
        return {"score": self.scores.pop(0)}


@pytest.mark.parametrize("limit", [1, 2])
def test_save_total_limit_keeps_best_and_loads_it(tmp_path, limit):
    # 10 updates/epoch, evaluation (and, with load_best_model_at_end, a checkpoint) every 3 steps: 3, 6, ..., 30
    scores = [0.1, 0.9, 0.3, 0.2, 0.4, 0.5, 0.3, 0.2, 0.1, 0.0]
    trainer = Trainer(model=Toy(), train_dataset=toy_data(), eval_dataset=toy_data(10, 1),
                      compute_metrics=ScriptedMetric(scores),
                      args=toy_args(tmp_path, evaluation_strategy="steps", save_strategy="steps", eval_steps=3,
                                    load_best_model_at_end=True, metric_for_best_model="score",
                                    save_total_limit=limit))
    trainer.train()
    best = str(tmp_path / f"{PREFIX_CHECKPOINT_DIR}-6")
    assert trainer.state.best_model_checkpoint == best and trainer.state.best_metric == 0.9
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-30", "checkpoint-6"]
    saved = torch.load(os.path.join(best, "pytorch_model.bin"), weights_only=True)
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, saved[k])


def test_evaluate_predict_and_metric_files(tmp_path):
    trainer = Trainer(model=Toy(), args=toy_args(tmp_path), train_dataset=toy_data(), eval_dataset=toy_data(11, 1),
                      compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())})
    metrics = trainer.evaluate(metric_key_prefix="dev")
    assert {"dev_loss", "dev_accuracy", "dev_runtime", "dev_samples_per_second"} <= set(metrics)
    # the loss is the mean over examples: 11 examples in batches of 8 + 3, weighted by batch size
    model = trainer.model.eval()
    with torch.no_grad():
        batch = default_data_collator(toy_data(11, 1))
        direct = nn.functional.cross_entropy(model(batch["input_ids"])["logits"], batch["labels"]).item()
    assert metrics["dev_loss"] == pytest.approx(direct, abs=1e-6)
    pred = trainer.predict(toy_data(11, 1))
    assert pred.predictions.shape == (11, 3) and pred.label_ids.tolist() == [i % 3 for i in range(11)]
    assert pred.metrics["eval_accuracy"] == metrics["dev_accuracy"]

    trainer.save_metrics("train", {"train_loss": 1.5, "epoch": 3.0})
    trainer.save_metrics("eval", {"eval_loss": 0.5, "epoch": 3.0})
    trainer.save_metrics("test", {"test_x": 2.0}, combined=False)
    assert json.loads((tmp_path / "train_results.json").read_text()) == {"train_loss": 1.5, "epoch": 3.0}
    assert json.loads((tmp_path / "all_results.json").read_text()) == {"train_loss": 1.5, "eval_loss": 0.5, "epoch": 3.0}
    trainer.save_metrics("eval", {"eval_loss": 0.25})
    assert json.loads((tmp_path / "all_results.json").read_text())["eval_loss"] == 0.25
    trainer.save_state()
    assert json.loads((tmp_path / "trainer_state.json").read_text())["log_history"][0]["dev_loss"] == metrics["dev_loss"]


def test_group_by_length_sampler():
    lengths = [int(x) for x in torch.randint(1, 100, (230,), generator=torch.Generator().manual_seed(0))]
    torch.manual_seed(0)
    order = list(LengthGroupedSampler(lengths, batch_size=2))
    assert sorted(order) == list(range(230))
    assert lengths[order[0]] == max(lengths)  # the longest batch comes first (fail fast on memory)
    mega = order[1:100]  # inside a mega-batch of 50 batches, lengths descend
    assert all(lengths[a] >= lengths[b] for a, b in zip(mega, mega[1:]))


class LossRecorder(Trainer):
    """Records each micro-batch loss, and the dtype the classifier computes in (training and evaluation)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.losses, self.dtypes = [], {"train": set(), "eval": set()}
        self.model.classifier.register_forward_hook(
            lambda module, inputs, out: self.dtypes["train" if module.training else "eval"].add(out.dtype))

    def training_step(self, model, inputs):
        loss = super().training_step(model, inputs)
        self.losses.append(loss.item())
        return loss


def test_bf16_autocasts_training_and_stays_near_fp32(tmp_path):
    """--bf16 runs the forward under bfloat16 autocast (the Linear layers compute in bf16, the weights stay fp32),
    evaluation stays fp32, and the losses follow the fp32 run's within bf16 rounding. Tolerance: bf16 keeps 8
    significant bits, so the classifier's inputs and logits (|x| <~ 2) are rounded by <= 2**-8 relative, <~ 1e-2
    absolute on the loss; 3 steps of lr 1e-2 add little. A run without autocast would match fp32 exactly."""
    runs = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        torch.manual_seed(123)
        trainer = LossRecorder(model=Toy(), train_dataset=toy_data(), eval_dataset=toy_data(10, 1),
                               args=toy_args(tmp_path / name, bf16=bf16, max_steps=3, disable_tqdm=False,
                                             evaluation_strategy="steps", eval_steps=2))
        trainer.train()
        runs[name] = trainer
    fp32, bf16 = runs["fp32"], runs["bf16"]
    assert bf16.state.global_step == 3 and bf16.model.classifier.weight.dtype == torch.float32
    assert bf16.dtypes == {"train": {torch.bfloat16}, "eval": {torch.float32}}
    assert fp32.dtypes == {"train": {torch.float32}, "eval": {torch.float32}}
    assert len(bf16.losses) == len(fp32.losses) == 3
    assert bf16.losses[0] != fp32.losses[0]  # same weights and batch: only the precision differs
    assert bf16.losses == pytest.approx(fp32.losses, abs=2e-2)
    assert all(np.isfinite(h.get("loss", 0.0)) for h in bf16.state.log_history)


def test_steps_epochs_and_logging(tmp_path):
    """37 examples / batch 4 = 10 batches; grad accumulation 3 -> 3 updates per epoch; 2.5 epochs -> ceil(7.5) = 8
    steps over 3 epochs. Logged loss = mean of the interval's losses, learning rate read after the step."""
    trainer = toy_train(tmp_path, num_train_epochs=2.5, gradient_accumulation_steps=3, logging_steps=1,
                        save_strategy="no", lr_scheduler_type="constant")
    assert (trainer.state.global_step, trainer.state.max_steps, trainer.state.num_train_epochs) == (8, 8, 3)
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in logs] == list(range(1, 9))
    assert all(h["learning_rate"] == 1e-2 for h in logs)
    assert logs[0]["epoch"] == 0.3 and logs[2]["epoch"] == 0.9 and logs[3]["epoch"] == 1.3
    final = trainer.state.log_history[-1]
    assert {"train_runtime", "train_samples_per_second", "total_flos"} <= set(final) and final["total_flos"] > 0
    assert not os.path.exists(tmp_path / "checkpoint-8")


def test_remove_unused_columns_and_tensorboard(tmp_path):
    import datasets

    rows = toy_data(12)
    ds = datasets.Dataset.from_dict({"input_ids": [r["input_ids"].tolist() for r in rows],
                                     "label": [r["label"] for r in rows], "idx": list(range(12)),
                                     "sentence": ["a b"] * 12})
    ds.set_format("torch")
    trainer = Trainer(model=Toy(), args=toy_args(tmp_path, max_steps=2, report_to="tensorboard",
                                                 logging_dir=str(tmp_path / "tb"), logging_steps=1, save_steps=10),
                      train_dataset=ds)
    trainer.train()
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "tb"))
    assert ds.column_names == ["input_ids", "label", "idx", "sentence"]  # the caller's dataset is not modified
    trainer = Trainer(model=Toy(), args=toy_args(tmp_path, max_steps=1, remove_unused_columns=False), train_dataset=ds)
    with pytest.raises(TypeError, match="idx"):
        trainer.train()


def test_collators():
    from tokenizers import Tokenizer, models, pre_tokenizers

    from transformers.tokenization_utils_fast import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, "a": 2, "b": 3, "c": 4}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>")
    feats = [{"input_ids": [2, 3, 4], "label": 1}, {"input_ids": [2], "label": 0}]
    batch = DataCollatorWithPadding(tok)(feats)
    assert batch["input_ids"].tolist() == [[2, 3, 4], [2, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [1, 0] and "label" not in batch
    assert DataCollatorWithPadding(tok, pad_to_multiple_of=8)(feats)["input_ids"].shape == (2, 8)

    batch = default_data_collator([{"input_ids": [1, 2], "label": 0.5, "text": "x", "none": None},
                                   {"input_ids": [3, 4], "label": 1.5, "text": "y", "none": None}])
    assert set(batch) == {"input_ids", "labels"} and batch["labels"].dtype == torch.float32
    batch = default_data_collator([{"input_ids": torch.tensor([1]), "label_ids": [1, 2]},
                                   {"input_ids": torch.tensor([2]), "label_ids": [0, 1]}])
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [[1, 2], [0, 1]]


def test_bad_usage_errors(tmp_path):
    with pytest.raises(RuntimeError, match="model"):
        Trainer(args=toy_args(tmp_path))
    trainer = Trainer(model=Toy(), args=toy_args(tmp_path))
    with pytest.raises(ValueError, match="train_dataset"):
        trainer.train()
    with pytest.raises(ValueError, match="No checkpoint"):
        Trainer(model=Toy(), args=toy_args(tmp_path), train_dataset=toy_data()).train(resume_from_checkpoint=True)
    unlabeled = [{"input_ids": r["input_ids"]} for r in toy_data(8)]
    with pytest.raises(ValueError, match="returned no loss"):
        Trainer(model=Toy(), args=toy_args(tmp_path, max_steps=1), train_dataset=unlabeled).train()


def test_set_seed_is_reproducible(monkeypatch):
    import random

    from transformers.trainer_utils import set_seed

    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    set_seed(3)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    assert os.environ["PYTHONHASHSEED"] == "3" and os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    set_seed(3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
