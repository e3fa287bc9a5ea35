"""Config, from_pretrained/save_pretrained, hub-cache resolution offline, and the public-name contract."""
import json

import pytest
import torch

import transformers
from transformers import (AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer, RobertaConfig,
                          RobertaForSequenceClassification, RobertaModel)

TINY = dict(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
            max_position_embeddings=32, type_vocab_size=1)


def _batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 64, (2, 9), generator=g)
    ids[1, 6:] = 1
    return ids, (ids != 1).long()


def test_version_and_public_names():
    assert transformers.__version__ == "4.4.2"
    # names other libraries import from an installed `transformers` (datasets, accelerate's GLUE examples)
    for name in ("PreTrainedTokenizerBase", "AutoConfig", "AutoTokenizer", "AutoModelForSequenceClassification",
                 "PretrainedConfig", "PreTrainedModel", "RobertaConfig", "RobertaTokenizerFast",
                 "get_linear_schedule_with_warmup", "set_seed", "Trainer", "TrainingArguments", "HfArgumentParser",
                 "DataCollatorWithPadding", "glue_compute_metrics"):
        assert hasattr(transformers, name), name
    assert callable(transformers.utils.logging.get_logger)


def test_config_keeps_unknown_kwargs_and_roundtrips(tmp_path):
    cfg = RobertaConfig(**TINY, apply_lora=True, lora_r=4, lora_alpha=8, cls_dropout=0.2, my_flag="x",
                        num_labels=3, finetuning_task="mnli")
    cfg.save_pretrained(tmp_path)
    on_disk = json.loads((tmp_path / "config.json").read_text())
    assert on_disk["model_type"] == "roberta" and on_disk["my_flag"] == "x" and on_disk["lora_r"] == 4
    back = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(back, RobertaConfig)
    assert back.to_dict() == cfg.to_dict()
    assert back.num_labels == 3 and back.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    assert back.label2id == {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2}
    # keyword arguments override the file, including the fork's flags absent from it
    over = AutoConfig.from_pretrained(tmp_path, num_labels=2, lora_r=16, reg_loss_wgt=1.0)
    assert over.num_labels == 2 and over.lora_r == 16 and over.reg_loss_wgt == 1.0


def test_id2label_from_json_uses_int_keys(tmp_path):
    cfg = RobertaConfig(**TINY, id2label={0: "neg", 1: "pos"})
    cfg.save_pretrained(tmp_path)
    back = RobertaConfig.from_pretrained(tmp_path)
    assert back.id2label == {0: "neg", 1: "pos"} and back.label2id == {"neg": 0, "pos": 1}


def test_save_load_safetensors_and_bin_identical(tmp_path):
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(RobertaConfig(**TINY)).eval()
    ids, mask = _batch()
    ref = model(ids, attention_mask=mask).logits
    for safe in (True, False):
        d = tmp_path / f"safe{safe}"
        model.save_pretrained(d, safe_serialization=safe)
        assert (d / ("model.safetensors" if safe else "pytorch_model.bin")).is_file()
        loaded, info = AutoModelForSequenceClassification.from_pretrained(d, output_loading_info=True)
        assert not loaded.training
        assert info["missing_keys"] == [] and info["unexpected_keys"] == []
        for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
            assert torch.equal(a, b), k
        assert torch.equal(loaded(ids, attention_mask=mask).logits, ref)


def test_save_pretrained_copies_only_tied_or_strided_tensors(tmp_path, monkeypatch):
    """Saving writes what the model holds (tied and transposed tensors included) and copies only the tensors that
    safetensors could not take as they are, never the whole model a second time."""
    from safetensors.torch import load_file

    torch.manual_seed(0)
    model = RobertaForSequenceClassification(RobertaConfig(**TINY))
    state = model.state_dict()
    state["tied.weight"] = state["classifier.dense.weight"]  # the same storage under a second key
    state["strided.weight"] = state["classifier.out_proj.weight"].t()
    copied = []
    clone = torch.Tensor.clone
    monkeypatch.setattr(torch.Tensor, "clone", lambda t, *a, **k: copied.append(t.shape) or clone(t, *a, **k))
    model.save_pretrained(tmp_path, state_dict=state)
    monkeypatch.undo()
    assert sorted(copied) == sorted([state["tied.weight"].shape, state["strided.weight"].shape])
    saved = load_file(tmp_path / "model.safetensors")
    assert saved.keys() == state.keys() and all(torch.equal(saved[k], v) for k, v in state.items())


def test_head_model_from_base_checkpoint_reports_new_head(tmp_path, caplog):
    torch.manual_seed(0)
    base = RobertaModel(RobertaConfig(**TINY))
    base.save_pretrained(tmp_path)
    clf, info = RobertaForSequenceClassification.from_pretrained(tmp_path, num_labels=3, output_loading_info=True)
    assert sorted(info["missing_keys"]) == sorted(k for k in clf.state_dict() if k.startswith("classifier."))
    # the base model's pooler has no place in the classifier: reported as unused, as 4.4.2 does
    assert sorted(info["unexpected_keys"]) == ["roberta.pooler.dense.bias", "roberta.pooler.dense.weight"]
    assert torch.equal(clf.roberta.embeddings.word_embeddings.weight, base.embeddings.word_embeddings.weight)
    # and the other way: a head checkpoint into the bare base model
    clf.save_pretrained(tmp_path / "clf")
    bare, info = AutoModel.from_pretrained(tmp_path / "clf", output_loading_info=True)
    assert isinstance(bare, RobertaModel)
    assert set(info["unexpected_keys"]) == {k for k in clf.state_dict() if k.startswith("classifier.")}


def test_shape_mismatch_is_a_clear_error_unless_ignored(tmp_path):
    RobertaForSequenceClassification(RobertaConfig(**TINY, num_labels=3)).save_pretrained(tmp_path)
    with pytest.raises(RuntimeError, match=r"classifier.out_proj.(weight|bias) has shape \[3(, 16)?\] in the checkpoint but \[2"):
        RobertaForSequenceClassification.from_pretrained(tmp_path, num_labels=2)
    model, info = RobertaForSequenceClassification.from_pretrained(tmp_path, num_labels=2,
                                                                    ignore_mismatched_sizes=True,
                                                                    output_loading_info=True)
    assert model.classifier.out_proj.weight.shape == (2, 16)
    assert set(info["mismatched_keys"]) == {"classifier.out_proj.weight", "classifier.out_proj.bias"}


def test_hub_id_resolves_from_cache_offline(tmp_path, monkeypatch):
    """A hub id loads from huggingface_hub's cache layout with no network; an uncached id fails clearly."""
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(RobertaConfig(**TINY))
    snap = tmp_path / "models--someorg--tiny-roberta" / "snapshots" / ("a" * 40)
    model.save_pretrained(snap)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = AutoModelForSequenceClassification.from_pretrained("someorg/tiny-roberta", cache_dir=str(tmp_path))
    assert torch.equal(loaded.classifier.out_proj.weight, model.classifier.out_proj.weight)
    with pytest.raises(OSError, match="not in the cache"):
        AutoConfig.from_pretrained("someorg/not-downloaded", cache_dir=str(tmp_path))


def test_bad_paths_give_one_line_errors(tmp_path):
    with pytest.raises(OSError, match="is not a directory"):
        AutoConfig.from_pretrained(str(tmp_path / "missing" / "dir"))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(OSError, match="not valid JSON"):
        AutoConfig.from_pretrained(tmp_path)
    RobertaConfig(**TINY).save_pretrained(tmp_path / "noweights")
    with pytest.raises(OSError, match="neither model.safetensors nor pytorch_model.bin"):
        RobertaModel.from_pretrained(tmp_path / "noweights")
    (tmp_path / "noweights" / "pytorch_model.bin").write_bytes(b"garbage")
    with pytest.raises(OSError, match="is a text file, not a torch or safetensors checkpoint"):
        RobertaModel.from_pretrained(tmp_path / "noweights")


def test_return_dict_false_gives_tuples():
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(RobertaConfig(**TINY, num_labels=1)).eval()
    ids, mask = _batch()
    labels = torch.tensor([0.5, -1.0])
    out = model(ids, attention_mask=mask, labels=labels)
    loss, logits = model(ids, attention_mask=mask, labels=labels, return_dict=False)
    assert torch.equal(loss, out.loss) and torch.equal(logits, out.logits) and out[0] is out.loss
    # num_labels == 1 is regression: MSE on the single logit
    assert torch.allclose(out.loss, ((logits.view(-1) - labels) ** 2).mean())


def test_fused_and_explicit_attention_agree():
    """output_attentions switches from the fused kernel to the explicit softmax; both must give the same logits
    (float32, 1e-6 absolute: only summation order differs)."""
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(RobertaConfig(**TINY)).eval()
    ids, mask = _batch()
    fused = model(ids, attention_mask=mask).logits
    explicit = model(ids, attention_mask=mask, output_attentions=True)
    assert torch.allclose(fused, explicit.logits, atol=1e-6)
    assert len(explicit.attentions) == 2 and explicit.attentions[0].shape == (2, 2, 9, 9)
    # masked keys get no attention
    assert explicit.attentions[0][1, :, :, 6:].abs().max() < 1e-6


def test_tokenizer_is_a_pretrainedtokenizerbase_for_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    corpus = ["the cat sat on the mat", "a dog ran in the park", "good movie", "bad film"] * 5
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=[
        "<s>", "<pad>", "</s>", "<unk>", "<mask>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.model.save(str(tmp_path))
    t = AutoTokenizer.from_pretrained(tmp_path, config=RobertaConfig(**TINY))
    assert issubclass(type(t), transformers.PreTrainedTokenizerBase)
    ds = datasets.Dataset.from_dict({"sentence": corpus[:4]})
    out = ds.map(lambda b: t(b["sentence"], truncation=True, max_length=8), batched=True)
    assert out[0]["input_ids"] == t(corpus[0], truncation=True, max_length=8)["input_ids"]
    assert out[0]["input_ids"][0] == t.cls_token_id and out[0]["input_ids"][-1] == t.sep_token_id
