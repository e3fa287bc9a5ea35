"""Checkpoints sized to what trains (issue 13 part 3): with frozen parameters, checkpoint-N holds the trainable
tensors and a reference to the base model; resume and load_best_model_at_end rebuild the model bit-exactly."""
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from transformers import (
    AutoModelForSequenceClassification, BertConfig, BertModel, Trainer, TrainerCallback, TrainingArguments,
)
from transformers.lora import fork_trainable_rule
from transformers.safe_loading import UnreadableCheckpoint
from transformers.checkpointing import trainable_only_writer
from transformers.trainable_checkpoint import BASE_MODEL_NAME, TRAINABLE_WEIGHTS_NAME, rebuild_state_dict
from transformers.trainer_utils import set_seed

STEPS = 12  # 24 rows in batches of 4: 6 steps an epoch, 2 epochs; evaluation and a checkpoint every 3 steps


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A small BERT (hidden 256, vocab 8000, 2 layers) saved as a pretrained base model. LoRA's share of a model
    shrinks with its width (r x hidden per layer against hidden^2 + the embeddings): at hidden 128 the LoRA + head
    tensors are already 1.1 % of the model, and a checkpoint holds them several times (trainable file, Adam's two
    moments, the LoRA files and PEFT adapter users warm-start from); roberta-base's ratio is smaller still."""
    folder = tmp_path_factory.mktemp("base")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=8000, hidden_size=256, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=1024)).save_pretrained(str(folder))
    return folder


def lora_model(base):
    set_seed(1)  # LoRA A and the classifier are drawn
    model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=2, apply_lora=True, lora_r=8,
                                                               lora_alpha=16)
    return fork_trainable_rule(model, apply_lora=True)


def rows(n, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 2000, (n, 16), generator=g)
    return [{"input_ids": r, "attention_mask": torch.ones(16, dtype=torch.long), "labels": int(r[0] % 2)}
            for r in ids]


class StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        control.should_training_stop = control.should_training_stop or state.global_step == self.step


def train(base, out, resume=None, stop=None, **kw):
    args = TrainingArguments(output_dir=str(out), num_train_epochs=2, per_device_train_batch_size=4, learning_rate=5e-3,
                             evaluation_strategy="steps", eval_steps=3, save_steps=3, load_best_model_at_end=True,
                             logging_steps=1, seed=3, disable_tqdm=True, report_to="none", **kw)
    trainer = Trainer(model=lora_model(base), args=args, train_dataset=rows(24, 1), eval_dataset=rows(8, 2),
                      callbacks=[StopAt(stop)] if stop else None)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()
    trainer.save_state()
    return trainer


def history(out):
    state = json.loads((Path(out) / "trainer_state.json").read_text())
    return [{k: v for k, v in e.items() if not k.endswith(("_runtime", "_per_second"))} for e in state["log_history"]]


def equal(a, b):
    """Same keys and bit-identical tensors (and plain values), nested dicts included (an optimizer's state)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


@pytest.fixture(scope="module")
def runs(base, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"small": train(base, root / "small"), "whole": train(base, root / "whole", save_trainable_only=False)}


def folder_size(folder):
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def test_lora_checkpoints_are_small_and_the_final_save_whole(runs):
    out = Path(runs["small"].args.output_dir)
    full_model = (out / "model.safetensors").stat().st_size  # the final save: the whole model
    for ckpt in sorted(out.glob("checkpoint-*")):
        names = {p.name for p in ckpt.iterdir()}
        assert {TRAINABLE_WEIGHTS_NAME, BASE_MODEL_NAME, "optimizer.pt"} <= names and "model.safetensors" not in names
        # the LoRA files stay in every checkpoint: the scripts warm-start from a checkpoint's pytorch_model_lora.bin
        assert {"pytorch_model_lora.bin", "model_lora.safetensors", "peft_adapter"} <= names
        # the trained tensors six times (trainable file, Adam's two moments, the two LoRA files, the PEFT adapter)
        # and under 100 kB of states, nothing of the frozen backbone: measured 6 x 330,760 + 50,775 bytes, 13 % of
        # this small model (BERT's pooler, hidden^2, is in the head; at bert-base size the same is about 5 %)
        trained = sum(4 * p.numel() for p in runs["small"].model.parameters() if p.requires_grad)
        assert folder_size(ckpt) <= 6 * trained + 100_000, (ckpt.name, folder_size(ckpt), trained)
        assert folder_size(ckpt) / full_model <= 0.15, (ckpt.name, folder_size(ckpt) / full_model)
    saved = load_file(next(out.glob("checkpoint-*")) / TRAINABLE_WEIGHTS_NAME)
    trainable = {n for n, p in runs["small"].model.named_parameters() if p.requires_grad}
    assert set(saved) == trainable  # LoRA and the head (pooler, classifier): the base gives every other tensor
    reference = json.loads((next(out.glob("checkpoint-*")) / BASE_MODEL_NAME).read_text())
    assert reference["base_model"] == str(Path(runs["small"].model.name_or_path).resolve())
    whole = Path(runs["whole"].args.output_dir)
    assert all((c / "model.safetensors").is_file() for c in whole.glob("checkpoint-*"))


def test_every_checkpoint_rebuilds_the_whole_model_bit_exact(runs, base):
    """Rebuilt from base + trained tensors, each checkpoint equals the whole-model checkpoint of the same run."""
    small, whole = Path(runs["small"].args.output_dir), Path(runs["whole"].args.output_dir)
    names = sorted(c.name for c in small.glob("checkpoint-*"))
    assert names == sorted(c.name for c in whole.glob("checkpoint-*")) and len(names) >= 2
    model = lora_model(base)
    for name in names:
        assert equal(rebuild_state_dict(model, str(small / name)), load_file(whole / name / "model.safetensors"))
    # saving less changes nothing else: the best checkpoint loaded at the end, the history, the final weights
    assert runs["small"].state.best_model_checkpoint.endswith(Path(runs["whole"].state.best_model_checkpoint).name)
    assert history(small) == history(whole)
    assert equal(load_file(small / "model.safetensors"), load_file(whole / "model.safetensors"))


def test_resume_from_a_trainable_only_checkpoint_is_bit_exact(runs, base, tmp_path):
    out = tmp_path / "cut"
    train(base, out, stop=7)  # 7: one step into the second epoch, after checkpoint-6
    assert (out / "checkpoint-6" / BASE_MODEL_NAME).is_file()
    train(base, out, resume=True)
    full = Path(runs["small"].args.output_dir)
    assert history(out) == history(full)
    assert equal(load_file(out / "model.safetensors"), load_file(full / "model.safetensors"))
    assert equal(torch.load(out / "checkpoint-12" / "optimizer.pt", weights_only=True)["state"],
                 torch.load(full / "checkpoint-12" / "optimizer.pt", weights_only=True)["state"])


def test_a_frozen_tensor_the_base_lacks_is_kept(base, tmp_path):
    """A frozen tensor the base lacks is left to a random draw, so the checkpoint keeps it. The tensor here is the
    token-type embedding table, frozen under LoRA (this used to be BERT's pooler, which now belongs to the head and
    trains, so it is kept as a trainable tensor as well)."""
    lacking = tmp_path / "base"
    lacking.mkdir()
    (lacking / "config.json").write_bytes((base / "config.json").read_bytes())
    gone = "embeddings.token_type_embeddings.weight"
    weights = {k: v for k, v in load_file(base / "model.safetensors").items() if k != gone}
    save_file(weights, lacking / "model.safetensors")
    trainer = Trainer(model=lora_model(lacking), args=TrainingArguments(output_dir=str(tmp_path / "out"),
                                                                        report_to="none", disable_tqdm=True))
    writer = trainable_only_writer(trainer.model, trainer.args)
    (tmp_path / "ckpt").mkdir()
    writer.save(str(tmp_path / "ckpt"))
    kept = set(load_file(tmp_path / "ckpt" / TRAINABLE_WEIGHTS_NAME))
    assert not trainer.model.bert.embeddings.token_type_embeddings.weight.requires_grad
    assert "bert." + gone in kept
    assert {"bert.pooler.dense.weight", "bert.pooler.dense.bias"} <= kept  # trainable: the head
    assert not any(k.startswith("bert.encoder.") and "lora_" not in k for k in kept)  # the base's, not kept
    assert equal(rebuild_state_dict(lora_model(lacking), str(tmp_path / "ckpt")), trainer.model.state_dict())


def test_a_changed_base_is_refused_in_one_line(runs, base, tmp_path):
    ckpt = next(Path(runs["small"].args.output_dir).glob("checkpoint-*"))
    reference = json.loads((ckpt / BASE_MODEL_NAME).read_text())
    copy = tmp_path / "ckpt"
    copy.mkdir()
    for p in ckpt.iterdir():
        if p.is_file():
            (copy / p.name).write_bytes(p.read_bytes())
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / "config.json").write_bytes((base / "config.json").read_bytes())
    weights = load_file(base / "model.safetensors")
    weights["embeddings.word_embeddings.weight"][0, 0] += 1
    save_file(weights, changed / "model.safetensors", metadata={"format": "pt"})
    assert (changed / "model.safetensors").stat().st_size == (base / "model.safetensors").stat().st_size  # same size
    # the reference now names a base that differs from the one the run read by one number
    (copy / BASE_MODEL_NAME).write_text(json.dumps({**reference, "base_model": str(changed)}))
    with pytest.raises(UnreadableCheckpoint) as info:
        rebuild_state_dict(lora_model(base), str(copy))
    assert str(info.value) == (f"{copy} holds only the trained tensors, saved over {changed / 'model.safetensors'} as "
                               "it was then; that file has changed since (sha256 differs): restore that base model "
                               "to resume")


def test_asking_for_it_without_a_base_is_a_one_line_error(tmp_path):
    model = fork_trainable_rule(AutoModelForSequenceClassification.from_config(
        BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
                   apply_lora=True, lora_r=2, lora_alpha=4)), apply_lora=True)
    args = TrainingArguments(output_dir=str(tmp_path), save_trainable_only=True, report_to="none", max_steps=1)
    with pytest.raises(ValueError, match=r"^save_trainable_only needs a model loaded with from_pretrained: .* pass "
                                         r"--save_trainable_only false$"):
        Trainer(model=model, args=args, train_dataset=rows(4, 0)).train()
    assert trainable_only_writer(model, TrainingArguments(output_dir=str(tmp_path), report_to="none")) \
        is None  # by default such a model simply gets whole checkpoints
