"""from_pretrained reads the weights file tensor by tensor into the freshly built model (issue 11: peak memory): the
tensors, the loading report and the random stream are what a whole-file read followed by load_state_dict gives."""
import json
import os
import re
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from transformers import PretrainedConfig, PreTrainedModel, RobertaConfig, RobertaForSequenceClassification, RobertaModel

TINY = dict(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
            max_position_embeddings=32, type_vocab_size=1)
FORMATS = {"safetensors": True, "bin": False}  # save_pretrained's safe_serialization


def randomized(model):
    """Every tensor away from any initial value, so that a tensor left unloaded cannot pass for a loaded one."""
    torch.manual_seed(123)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    return model


def write_weights(folder, config, state_dict, safe):
    os.makedirs(folder, exist_ok=True)
    config.save_pretrained(folder)
    if safe:
        save_file(state_dict, os.path.join(folder, "model.safetensors"))
    else:
        torch.save(state_dict, os.path.join(folder, "pytorch_model.bin"))
    return folder


def load(cls, folder, **kwargs):
    """from_pretrained under a fixed seed; also the next draw of the global random stream."""
    torch.manual_seed(0)
    model, info = cls.from_pretrained(folder, output_loading_info=True, **kwargs)
    return model, info, torch.rand(4)


def fresh(cls, config):
    """What the same seed gives without any loading: the initial tensors and the next draw."""
    torch.manual_seed(0)
    model = cls(config)
    return model.state_dict(), torch.rand(4)


def assert_equal_tensors(got, want):
    for k, v in want.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v), k


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_tensor_comes_back_bit_equal(tmp_path, fmt):
    saved = randomized(RobertaForSequenceClassification(RobertaConfig(**TINY, num_labels=2)))
    saved.save_pretrained(tmp_path, safe_serialization=FORMATS[fmt])
    model, info, draw = load(RobertaForSequenceClassification, tmp_path)
    assert list(model.state_dict()) == list(saved.state_dict())
    assert_equal_tensors(model.state_dict(), saved.state_dict())
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
    assert torch.equal(draw, fresh(RobertaForSequenceClassification, saved.config)[1])  # loading draws nothing


@pytest.mark.parametrize("fmt", FORMATS)
def test_base_model_prefix_is_added_and_stripped(tmp_path, fmt, caplog):
    bare = randomized(RobertaModel(RobertaConfig(**TINY)))
    bare.save_pretrained(tmp_path / "bare", safe_serialization=FORMATS[fmt])
    config = RobertaConfig(**TINY, num_labels=3)
    model, info, draw = load(RobertaForSequenceClassification, tmp_path / "bare", num_labels=3)
    init, init_draw = fresh(RobertaForSequenceClassification, config)
    assert_equal_tensors(model.state_dict(), {f"roberta.{k}": v for k, v in bare.state_dict().items()
                                              if not k.startswith("pooler.")})
    assert_equal_tensors(model.state_dict(), {k: v for k, v in init.items() if k.startswith("classifier.")})
    assert torch.equal(draw, init_draw)
    assert info["missing_keys"] == [k for k in init if k.startswith("classifier.")]
    assert sorted(info["unexpected_keys"]) == ["roberta.pooler.dense.bias", "roberta.pooler.dense.weight"]
    assert f"4 tensor(s) are not in {tmp_path / 'bare'} and start from random values" in caplog.text

    head = randomized(RobertaForSequenceClassification(config))
    head.save_pretrained(tmp_path / "head", safe_serialization=FORMATS[fmt])
    backbone, info, _ = load(RobertaModel, tmp_path / "head")
    assert_equal_tensors(backbone.state_dict(), {k[len("roberta."):]: v for k, v in head.state_dict().items()
                                                 if k.startswith("roberta.")})
    assert info["missing_keys"] == ["pooler.dense.weight", "pooler.dense.bias"]
    assert sorted(info["unexpected_keys"]) == sorted(k for k in head.state_dict() if k.startswith("classifier."))


@pytest.mark.parametrize("fmt", FORMATS)
def test_legacy_names_other_dtype_and_views_of_one_storage(tmp_path, fmt):
    saved = randomized(RobertaForSequenceClassification(RobertaConfig(**TINY, num_labels=2)))
    half = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v.half()
            for k, v in saved.state_dict().items()}
    if fmt == "bin":  # torch.save keeps views: two tensors at offsets inside one storage, under a wrapper key
        both = torch.cat([half["classifier.dense.weight"], half["classifier.out_proj.weight"]])
        half["classifier.dense.weight"], half["classifier.out_proj.weight"] = both[:16], both[16:]
        half = {"state_dict": half}
    folder = write_weights(tmp_path / "legacy", saved.config, half, FORMATS[fmt])
    model, info, _ = load(RobertaForSequenceClassification, folder)
    assert_equal_tensors(model.state_dict(), {k: v.half().float() for k, v in saved.state_dict().items()})
    assert not torch.equal(model.state_dict()["classifier.dense.weight"], saved.state_dict()["classifier.dense.weight"])
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []


class TiedConfig(PretrainedConfig):
    model_type = "tied-test"


class TiedModel(PreTrainedModel):
    """Two modules sharing one weight, as a decoder tied to its input embeddings."""
    config_class = TiedConfig

    def __init__(self, config):
        super().__init__(config)
        self.embed = nn.Embedding(6, 4)
        self.decoder = nn.Linear(4, 6, bias=False)
        self.decoder.weight = self.embed.weight


@pytest.mark.parametrize("fmt", FORMATS)
def test_tied_weights_stay_tied_and_the_last_name_wins(tmp_path, fmt):
    config = TiedConfig()
    values = {"embed.weight": torch.randn(6, 4), "decoder.weight": torch.randn(6, 4)}
    model, _, _ = load(TiedModel, write_weights(tmp_path, config, values, FORMATS[fmt]))
    reference = TiedModel(config)
    reference.load_state_dict(values)
    assert model.decoder.weight is model.embed.weight
    assert torch.equal(model.embed.weight, reference.embed.weight)
    assert torch.equal(model.embed.weight, values["decoder.weight"])  # module order: decoder is copied last


@pytest.mark.parametrize("fmt", FORMATS)
def test_mismatched_shapes(tmp_path, fmt):
    saved = randomized(RobertaForSequenceClassification(RobertaConfig(**TINY, num_labels=2)))
    saved.save_pretrained(tmp_path, safe_serialization=FORMATS[fmt])
    with pytest.raises(RuntimeError) as error:
        RobertaForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    assert re.fullmatch(rf"{tmp_path}: tensor classifier.out_proj.(weight|bias) has shape \[2(, 16)?\] in the "
                        r"checkpoint but \[3(, 16)?\] in the model \(2 mismatched\).*", str(error.value))
    model, info, draw = load(RobertaForSequenceClassification, tmp_path, num_labels=3, ignore_mismatched_sizes=True)
    init, init_draw = fresh(RobertaForSequenceClassification, model.config)
    assert sorted(info["mismatched_keys"]) == ["classifier.out_proj.bias", "classifier.out_proj.weight"]
    assert_equal_tensors(model.state_dict(), {k: init[k] for k in info["mismatched_keys"]})
    assert_equal_tensors(model.state_dict(), {k: v for k, v in saved.state_dict().items() if "out_proj" not in k})
    assert torch.equal(draw, init_draw)


def test_explicit_state_dict_is_still_used(tmp_path):
    saved = randomized(RobertaForSequenceClassification(RobertaConfig(**TINY, num_labels=2)))
    saved.save_pretrained(tmp_path)
    other = randomized(RobertaForSequenceClassification(saved.config))
    with torch.no_grad():
        other.classifier.dense.weight.add_(1.0)
    model, _, _ = load(RobertaForSequenceClassification, tmp_path, state_dict=other.state_dict())
    assert_equal_tensors(model.state_dict(), other.state_dict())


PEAK = """
import json, sys
import safetensors.torch, torch  # imported up front: only the loading itself is measured
import transformers.models.roberta.modeling_roberta
from transformers import AutoModelForSequenceClassification

def memory():
    with open("/proc/self/status") as f:
        return {l.split(":")[0]: int(l.split()[1]) * 1024 for l in f if l.startswith(("VmRSS", "VmHWM"))}

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # VmHWM restarts from the current size
before = memory()
model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1])
print(json.dumps({"before": before["VmRSS"], "peak": memory()["VmHWM"]}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc peak-RSS accounting")
@pytest.mark.parametrize("fmt", FORMATS)
def test_loading_holds_one_copy_of_the_weights(tmp_path, fmt):
    # ~110 MB of float32 weights: large against the allocator's noise, small enough for a quick test
    config = RobertaConfig(vocab_size=30000, hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
                           intermediate_size=2048, num_labels=2)
    model = RobertaForSequenceClassification(config)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    model.save_pretrained(tmp_path, safe_serialization=FORMATS[fmt])
    del model
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", PEAK, str(tmp_path)], capture_output=True, text=True, env=env,
                         check=True)
    rss = json.loads(out.stdout.strip().splitlines()[-1])
    growth = rss["peak"] - rss["before"]
    # the model itself is one copy; a whole-file read before copying would make it about two
    assert size <= growth * 1.1 and growth <= 1.3 * size, (growth / 2**20, size / 2**20)
