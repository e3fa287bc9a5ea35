"""Houlsby/Pfeiffer adapters and BitFit (issue 10, part 1): placement, names, counts, checkpoints, training runs.

Facts used (from the LoRA fork's source and paper, not its code): adapters are nn.Linear pairs named
adapter_A (hidden -> size) and adapter_B (size -> hidden) in a module `adapter` of each block output; Houlsby puts one
on the attention output and one on the feed-forward output with a swish (SiLU) bottleneck, Pfeiffer one on the
feed-forward output with a ReLU bottleneck fed by the block's LayerNorm; AdapterHub files name them
`...adapters.<name>.adapter_down.0.*` / `adapter_up.*` and the head `heads.<name>.1.*` / `heads.<name>.4.*`.
The LoRA paper's Table 2 lists 0.8M trainable parameters for RoBERTa-large with AdptH (the fork's script: size 8)
and AdptP (size 16), and 0.1M for RoBERTa-base with BitFit (head not counted).
"""
import importlib.util
import json
import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from transformers import (BertConfig, BertForSequenceClassification, DebertaV2Config,
                          DebertaV2ForSequenceClassification, RobertaConfig, RobertaForSequenceClassification,
                          set_seed)
from transformers.adapters import ADAPTER_STATE_NAME, SAFE_ADAPTER_STATE_NAME
from transformers.method_loading import load_adapter_state_dict
from transformers.lora import count_parameters, fork_trainable_rule

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "text-classification"

TINY_ROBERTA = dict(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                    max_position_embeddings=20, type_vocab_size=1, layer_norm_eps=1e-5, num_labels=3)
TINY_DEBERTA = dict(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                    max_position_embeddings=20, relative_attention=True, position_buckets=8, pos_att_type="p2c|c2p",
                    share_att_key=True, norm_rel_ebd="layer_norm", position_biased_input=False, num_labels=3)
ROBERTA_LARGE = dict(vocab_size=50265, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                     intermediate_size=4096, max_position_embeddings=514, type_vocab_size=1, num_labels=3)
ROBERTA_BASE = dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, num_labels=3)
MODELS = {"roberta": (RobertaConfig, RobertaForSequenceClassification, TINY_ROBERTA),
          "deberta": (DebertaV2Config, DebertaV2ForSequenceClassification, TINY_DEBERTA)}


def build(kind, seed=0, **flags):
    config_class, model_class, shape = MODELS[kind]
    torch.manual_seed(seed)
    return model_class(config_class(**shape, **flags)).eval()


def adapters(adapter_type, size=4):
    return dict(apply_adapter=True, adapter_type=adapter_type, adapter_size=size)


def batch(vocab=60):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, vocab, (3, 9), generator=g)
    ids[:, 0], ids[:, -1] = 0, 2
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def backbone_of(model):
    return getattr(model, model.base_model_prefix)


# -- placement and names --------------------------------------------------------------------------------------------
def expected_adapter_names(prefix, layers, adapter_type):
    sites = ["attention.output", "output"] if adapter_type == "houlsby" else ["output"]
    return {f"{prefix}.encoder.layer.{i}.{site}.adapter.adapter_{ab}.{wb}"
            for i in range(layers) for site in sites for ab in "AB" for wb in ("weight", "bias")}


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("adapter_type", ["houlsby", "pfeiffer"])
def test_adapter_tensors_have_the_forks_names_and_shapes(kind, adapter_type):
    model = build(kind, **adapters(adapter_type, size=5))
    prefix = model.base_model_prefix
    found = {k: tuple(v.shape) for k, v in model.state_dict().items() if "adapter" in k}
    assert set(found) == expected_adapter_names(prefix, 2, adapter_type)
    for k, shape in found.items():
        want = {"adapter_A.weight": (5, 16), "adapter_A.bias": (5,), "adapter_B.weight": (16, 5),
                "adapter_B.bias": (16,)}[k.split(".adapter.")[1]]
        assert shape == want, k
    # the rest of the model keeps the names (and tensors) it has without adapters
    plain = build(kind)
    assert set(model.state_dict()) - set(found) == set(plain.state_dict())


@pytest.mark.parametrize("kind", MODELS)
def test_adapter_init_is_the_models_linear_init(kind):
    """init_weights draws adapters like every linear layer: weight ~ N(0, initializer_range), bias 0."""
    config_class, model_class, shape = MODELS[kind]
    torch.manual_seed(0)
    model = model_class(config_class(**{**shape, "hidden_size": 64, "intermediate_size": 64,
                                        "num_attention_heads": 4}, **adapters("houlsby", size=64)))
    weights = torch.cat([p.flatten() for n, p in model.named_parameters() if "adapter" in n and n.endswith("weight")])
    biases = [p for n, p in model.named_parameters() if "adapter" in n and n.endswith("bias")]
    assert all(torch.equal(b, torch.zeros_like(b)) for b in biases)
    assert abs(weights.mean().item()) < 0.002 and abs(weights.std().item() - 0.02) < 0.001  # 32768 draws


def bottleneck(adapter, x, act):
    return F.linear(act(F.linear(x, adapter.adapter_A.weight, adapter.adapter_A.bias)),
                    adapter.adapter_B.weight, adapter.adapter_B.bias)


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("adapter_type", ["houlsby", "pfeiffer"])
def test_adapters_sit_where_the_fork_puts_them(kind, adapter_type):
    """Block outputs recomputed from the weights: Houlsby h + B(silu(A(h))) after each block's dropout (attention
    output and FFN output) before the LayerNorm; Pfeiffer h + B(relu(A(LN(h + x)))) on the FFN output only."""
    model = build(kind, **adapters(adapter_type))
    with torch.no_grad():
        for p in (p for n, p in model.named_parameters() if "adapter" in n):
            p.normal_(0, 0.5)  # large enough that a misplaced adapter changes the result
    layer = backbone_of(model).encoder.layer[0]
    g = torch.Generator().manual_seed(3)
    x, context = torch.randn(2, 5, 16, generator=g), torch.randn(2, 5, 16, generator=g)
    out_att, out_ffn = layer.attention.output, layer.output
    with torch.no_grad():
        # attention output block: input `context` from self-attention, residual x
        h = F.linear(context, out_att.dense.weight, out_att.dense.bias)
        if adapter_type == "houlsby":
            h = h + bottleneck(out_att.adapter, h, F.silu)
        else:
            assert out_att.adapter is None
        want_att = F.layer_norm(h + x, (16,), out_att.LayerNorm.weight, out_att.LayerNorm.bias, out_att.LayerNorm.eps)
        torch.testing.assert_close(out_att(context, x), want_att, rtol=0, atol=1e-6)
        # feed-forward output block: input the intermediate activations, residual the attention output
        inter = torch.randn(2, 5, 24, generator=g)
        h = F.linear(inter, out_ffn.dense.weight, out_ffn.dense.bias)
        ln = lambda t: F.layer_norm(t, (16,), out_ffn.LayerNorm.weight, out_ffn.LayerNorm.bias,  # noqa: E731
                                    out_ffn.LayerNorm.eps)
        if adapter_type == "houlsby":
            h = h + bottleneck(out_ffn.adapter, h, F.silu)
        else:
            h = h + bottleneck(out_ffn.adapter, ln(h + x), F.relu)
        torch.testing.assert_close(out_ffn(inter, x), ln(h + x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("adapter_type", ["houlsby", "pfeiffer"])
def test_zero_adapters_leave_the_model_unchanged(kind, adapter_type):
    """With adapter_B zeroed each adapter adds exactly 0: logits equal the same weights without adapters."""
    plain = build(kind, seed=4)
    model = build(kind, seed=9, **adapters(adapter_type))
    model.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "adapter_B" in n:
                p.zero_()
        assert torch.equal(model(**batch()).logits, plain(**batch()).logits)
        for n, p in model.named_parameters():  # and a non-zero adapter does change them
            if "adapter_B.bias" in n:
                p.normal_(0, 0.5)  # not a constant: the LayerNorm after the adapter removes a constant shift
        assert (model(**batch()).logits - plain(**batch()).logits).abs().max() > 1e-4


def test_bad_adapter_settings_are_one_line_errors():
    for flags, text in ((adapters("lora"), "adapter_type 'lora' is unknown: use houlsby or pfeiffer"),
                        (adapters("houlsby", size=0), "positive integer adapter_size, got 0")):
        with pytest.raises(ValueError, match=text):
            build("roberta", **flags)


# -- trainable parameters -------------------------------------------------------------------------------------------
def on_meta(config_class, model_class, **kw):
    with torch.device("meta"):  # the full 24-layer shape, no memory: counting needs shapes only
        return model_class(config_class(**kw))


def roberta_backbone_params(h, layers, ffn, vocab, positions, types):
    embeddings = (vocab + positions + types) * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h + (h * ffn + ffn) + (ffn * h + h) + 2 * h
    return embeddings + layers * layer


@pytest.mark.parametrize("adapter_type,sites", [("houlsby", 2), ("pfeiffer", 1)])
@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_trainable_counts_roberta_large_equal_the_arithmetic(adapter_type, sites, size):
    model = on_meta(RobertaConfig, RobertaForSequenceClassification, **ROBERTA_LARGE, **adapters(adapter_type, size))
    fork_trainable_rule(model, apply_adapter=True)
    counts = count_parameters(model)
    h, layers = 1024, 24
    adapter = layers * sites * (h * size + size + size * h + h)  # A: h x size + bias, B: size x h + bias
    head = (h * h + h) + (h * 3 + 3)  # classifier.dense, classifier.out_proj
    assert counts["adapter"] == adapter
    assert counts["head"] == head
    assert counts["trainable"] == adapter + head
    assert counts["total"] == roberta_backbone_params(h, layers, 4096, 50265, 514, 1) + adapter + head
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if ".adapter." in n or n.startswith("classifier.")}
    if (adapter_type, size) in (("houlsby", 8), ("pfeiffer", 16)):  # the fork's scripts; the paper's 0.8M
        assert round(adapter / 1e6, 1) == 0.8


def test_trainable_counts_small_deberta_equal_the_arithmetic():
    for adapter_type, sites in (("houlsby", 2), ("pfeiffer", 1)):
        for size in (3, 8):
            model = build("deberta", **adapters(adapter_type, size))
            fork_trainable_rule(model, apply_adapter=True)
            counts = count_parameters(model)
            adapter = 2 * sites * (2 * 16 * size + size + 16)
            head = (16 * 16 + 16) + (16 * 3 + 3)  # pooler.dense, classifier
            assert (counts["adapter"], counts["head"], counts["trainable"]) == (adapter, head, adapter + head)


@pytest.mark.parametrize("kind", MODELS)
def test_bitfit_trains_exactly_the_biases_and_the_head(kind):
    model = build(kind, apply_bitfit=True)
    fork_trainable_rule(model, apply_bitfit=True)
    prefix = model.base_model_prefix + "."
    shapes = dict(model.named_parameters())
    biases = {n for n in shapes if n.startswith(prefix) and n.endswith(".bias")}
    head = {n for n in shapes if not n.startswith(prefix)}
    assert {n for n, p in shapes.items() if p.requires_grad} == biases | head
    assert all(shapes[n].dim() == 1 for n in biases) and len(biases) > 10


def test_bitfit_count_roberta_base():
    """Every bias of RoBERTa-base: embeddings' LayerNorm, per layer q/k/v/o, two LayerNorms, the two FFN layers."""
    model = on_meta(RobertaConfig, RobertaForSequenceClassification, **ROBERTA_BASE)
    fork_trainable_rule(model, apply_bitfit=True)
    counts = count_parameters(model)
    biases = 768 + 12 * (4 * 768 + 2 * 768 + 3072 + 768)
    assert counts["trainable"] - counts["head"] == biases == 102_144
    assert round(biases / 1e6, 1) == 0.1


# -- checkpoints ----------------------------------------------------------------------------------------------------
def adapterhub_folder(model, folder, name="mnli", head_layers=("classifier.dense", "classifier.out_proj")):
    """Write the model's adapters and head in AdapterHub's layout, built by its naming (not by our loader's code)."""
    adapter, head = {}, {}
    for key, value in model.state_dict().items():
        if ".adapter." in key:
            site, rest = key.split(".adapter.")
            module, param = rest.split(".")
            hub_module = {"adapter_A": "adapter_down.0", "adapter_B": "adapter_up"}[module]
            adapter[f"{site}.adapters.{name}.{hub_module}.{param}"] = value.clone()
        for index, ours in zip((1, 4), head_layers):
            if key.startswith(ours + "."):
                head[f"heads.{name}.{index}.{key[len(ours) + 1:]}"] = value.clone()
    os.makedirs(folder, exist_ok=True)
    torch.save(adapter, os.path.join(folder, "pytorch_adapter.bin"))
    torch.save(head, os.path.join(folder, "pytorch_model_head.bin"))
    return adapter, head


def scrambled(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".adapter." in n or not n.startswith(model.base_model_prefix + "."):
                p.copy_(torch.randn(p.shape, generator=g))
    return model


@pytest.mark.parametrize("kind,head_layers", [("roberta", ("classifier.dense", "classifier.out_proj")),
                                              ("deberta", ("pooler.dense", "classifier"))])
@pytest.mark.parametrize("adapter_type", ["houlsby", "pfeiffer"])
def test_adapterhub_folder_loads_strictly(tmp_path, kind, head_layers, adapter_type):
    trained = scrambled(build(kind, seed=1, **adapters(adapter_type)), seed=7)
    adapter, head = adapterhub_folder(trained, tmp_path / "hub", head_layers=head_layers)
    assert adapter and all(".adapters.mnli.adapter_" in k for k in adapter)
    assert sorted({k.split(".")[2] for k in head}) == ["1", "4"]
    fresh = build(kind, seed=1, **adapters(adapter_type))  # same backbone, other adapters and head
    with torch.no_grad():
        assert not torch.allclose(fresh(**batch()).logits, trained(**batch()).logits)
    info = load_adapter_state_dict(fresh, str(tmp_path / "hub"))
    assert len(info["loaded"]) == len(adapter) + len(head) and not info["reinitialised_head"]
    assert_same_tensors(fresh, trained)
    with torch.no_grad():
        assert torch.equal(fresh(**batch()).logits, trained(**batch()).logits)


def assert_same_tensors(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def error(model, path):
    with pytest.raises(ValueError) as info:
        load_adapter_state_dict(model, str(path))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_adapter_path_refuses_what_does_not_fit(tmp_path):
    houlsby = scrambled(build("roberta", **adapters("houlsby")), seed=2)
    pfeiffer = build("roberta", **adapters("pfeiffer"))
    adapterhub_folder(houlsby, tmp_path / "h")
    adapterhub_folder(pfeiffer, tmp_path / "p")
    assert "attention adapters (houlsby) but the model is pfeiffer" in error(pfeiffer, tmp_path / "h")
    assert "no attention adapters (pfeiffer) but the model is houlsby" in error(houlsby, tmp_path / "p")
    assert "another adapter_size" in error(build("roberta", **adapters("houlsby", size=6)), tmp_path / "h")
    assert "the model has no adapters: pass --apply_adapter" in error(build("roberta"), tmp_path / "h")
    # a layer missing from the file
    sd = torch.load(tmp_path / "h" / "pytorch_adapter.bin")
    (tmp_path / "gap").mkdir()
    torch.save({k: v for k, v in sd.items() if ".layer.1.output." not in k}, tmp_path / "gap" / "pytorch_adapter.bin")
    assert "missing from the file, e.g. roberta.encoder.layer.1.output.adapter.adapter_A.weight" in error(
        houlsby, tmp_path / "gap")
    # two adapter names in one file, a file with no adapters, a folder with nothing we read
    torch.save({**sd, **{k.replace(".mnli.", ".rte."): v for k, v in sd.items()}}, tmp_path / "two.bin")
    assert "named mnli, rte: keep only one" in error(houlsby, tmp_path / "two.bin")
    torch.save({"classifier.dense.bias": torch.zeros(16)}, tmp_path / "head_only.bin")
    assert "holds no adapter tensors" in error(houlsby, tmp_path / "head_only.bin")
    (tmp_path / "empty").mkdir()
    assert "an adapter folder must hold pytorch_adapter.bin" in error(houlsby, tmp_path / "empty")
    assert "does not exist" in error(houlsby, tmp_path / "nowhere")
    (tmp_path / "junk.bin").write_text("not a checkpoint")
    assert "junk.bin is a text file, not a torch or safetensors checkpoint" in error(houlsby, tmp_path / "junk.bin")


def test_adapter_head_of_another_label_count_starts_fresh(tmp_path):
    mnli = scrambled(build("roberta", **adapters("houlsby")), seed=3)
    adapterhub_folder(mnli, tmp_path / "hub")
    config_class, model_class, shape = MODELS["roberta"]
    torch.manual_seed(0)
    rte = model_class(config_class(**{**shape, "num_labels": 2}, **adapters("houlsby")))
    head_before = {k: v.clone() for k, v in rte.state_dict().items() if k.startswith("classifier.")}
    info = load_adapter_state_dict(rte, str(tmp_path / "hub"))
    assert sorted(info["reinitialised_head"]) == sorted(f"classifier.{m}.{p}" for m in ("dense", "out_proj")
                                                        for p in ("weight", "bias"))
    for k, v in rte.state_dict().items():
        if k.startswith("classifier."):
            assert torch.equal(v, head_before[k])
        elif ".adapter." in k:
            assert torch.equal(v, mnli.state_dict()[k])


# -- tiny end-to-end runs through run_glue.py -----------------------------------------------------------------------
def _load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_adapters", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory):
    make_tiny = _load("make_tiny")
    root = tmp_path_factory.mktemp("adapters")
    sentences = make_tiny.write_sst2_like(str(root / "SST-2"), 512, 64, 8, seed=0)
    model = str(root / "model")
    vocab = make_tiny.train_tokenizer(sentences, model, vocab_size=400, model_max_length=64)
    make_tiny.make_model(model, vocab, hidden_size=64, heads=2, layers=2, max_seq_length=64)
    return {"root": root, "data": str(root / "SST-2"), "model": model, "run_glue": _load("run_glue")}


METHODS = {"houlsby": ["--apply_adapter", "--adapter_type", "houlsby", "--adapter_size", "8"],
           "pfeiffer": ["--apply_adapter", "--adapter_type", "pfeiffer", "--adapter_size", "8"],
           "bitfit": ["--apply_bitfit"]}
# learning rate and epochs per method on the frozen random encoder (measured: dev accuracy 0.97 / 0.92 / 0.86)
SCHEDULE = {"houlsby": ["--learning_rate", "1e-2", "--num_train_epochs", "12"],
            "pfeiffer": ["--learning_rate", "5e-3", "--num_train_epochs", "20"],
            "bitfit": ["--learning_rate", "2e-2", "--num_train_epochs", "20"]}


def run_glue(task, out, *args, train=True):
    argv = ["--model_name_or_path", task["model"], "--task_name", "sst2", "--data_dir", task["data"],
            "--output_dir", str(out), "--overwrite_output_dir", "--do_eval", "--max_seq_length", "64",
            "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "64", "--warmup_ratio", "0.06",
            "--seed", "0", "--logging_steps", "16",
            "--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no", *args]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 64-wide model: threads only add overhead
    try:
        task["run_glue"].main(argv + (["--do_train"] if train else []))
    finally:
        torch.set_num_threads(threads)
    return json.loads((Path(out) / "eval_results.json").read_text())


@pytest.mark.parametrize("method", METHODS)
def test_tiny_run_learns_and_trains_only_its_parameters(tiny_task, tmp_path, method):
    out = tmp_path / method
    metrics = run_glue(tiny_task, out, *METHODS[method], *SCHEDULE[method])
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) >= 12
    quarter = len(losses) // 4
    first, last = sum(losses[:quarter]) / quarter, sum(losses[-quarter:]) / quarter
    # the label is whether the sentence holds a positive or a negative word: learnable; chance is 0.5 at loss log 2
    # (48 of 64 dev examples right by chance: probability 3e-5)
    assert last < 0.5 * first and metrics["eval_loss"] < math.log(2) and metrics["eval_accuracy"] >= 0.75, \
        (losses, metrics)

    # what moved: the method's tensors and the head; every other tensor is the pretrained one, bit for bit.
    # The adapters' starting values: run_glue draws them right after set_seed(--seed), as here.
    set_seed(0)
    flags = {} if method == "bitfit" else adapters(method, size=8)
    before = RobertaForSequenceClassification.from_pretrained(tiny_task["model"], num_labels=2, **flags).state_dict()
    after = RobertaForSequenceClassification.from_pretrained(str(out)).state_dict()
    trains = (lambda k: k.endswith(".bias")) if method == "bitfit" else (lambda k: ".adapter." in k)
    for k, v in after.items():
        if k.startswith("roberta.") and not trains(k):
            assert torch.equal(v, before[k]), k
    assert after.keys() == before.keys()
    moved = [k for k, v in after.items() if k.startswith("roberta.") and trains(k) and not torch.equal(v, before[k])]
    assert moved == [k for k in after if k.startswith("roberta.") and trains(k)]

    if method == "bitfit":
        assert not (out / ADAPTER_STATE_NAME).exists()
        return
    # the adapter-only file: adapters + head, exactly; --adapter_path reads it (and the AdapterHub layout) back
    saved = torch.load(out / ADAPTER_STATE_NAME)
    assert set(saved) == {k for k in after if ".adapter." in k or k.startswith("classifier.")}
    assert (out / SAFE_ADAPTER_STATE_NAME).is_file()
    for k, v in saved.items():
        assert torch.equal(v, after[k]), k
    again = run_glue(tiny_task, tmp_path / "again", *METHODS[method], "--adapter_path", str(out), train=False)
    tuned = RobertaForSequenceClassification.from_pretrained(str(out))
    adapterhub_folder(tuned, tmp_path / "hub", name="sst2")
    hub = run_glue(tiny_task, tmp_path / "from_hub", *METHODS[method], "--adapter_path", str(tmp_path / "hub"),
                   train=False)
    for result in (again, hub):
        assert result["eval_accuracy"] == metrics["eval_accuracy"]
        assert abs(result["eval_loss"] - metrics["eval_loss"]) < 1e-5


def _run_error(tiny_task, tmp_path, *args):
    with pytest.raises(SystemExit) as info:
        run_glue(tiny_task, tmp_path / "o", *args, train=False)
    message = str(info.value.code)
    assert "\n" not in message
    return message


def test_run_glue_adapter_errors_are_one_line(tiny_task, tmp_path):
    assert _run_error(tiny_task, tmp_path, "--adapter_path", str(tmp_path)).endswith(
        "--adapter_path needs --apply_adapter with the --adapter_type/--adapter_size it was trained with")
    assert "an adapter folder must hold" in _run_error(tiny_task, tmp_path, *METHODS["houlsby"], "--adapter_path",
                                                       str(tmp_path))
    assert "adapter_type 'bogus' is unknown" in _run_error(tiny_task, tmp_path, "--apply_adapter", "--adapter_type",
                                                           "bogus")


def test_a_model_without_adapters_still_refuses_apply_adapter(tiny_task, tmp_path):
    bert = tmp_path / "bert"
    BertForSequenceClassification(BertConfig(vocab_size=400, hidden_size=16, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=16)).save_pretrained(bert)
    with pytest.raises(SystemExit) as info:
        run_glue({**tiny_task, "model": str(bert)}, tmp_path / "o", "--tokenizer_name", tiny_task["model"],
                 "--apply_adapter", train=False)
    assert str(info.value.code) == ("run_glue.py: error: apply_adapter is not supported for BERT: use apply_lora "
                                    "(or apply_bitfit)")
