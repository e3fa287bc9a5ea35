"""Bottleneck adapters placed as in the LoRA paper's NLU fork, their checkpoints, and `--adapter_path`.

Placement (config.apply_adapter, config.adapter_type, config.adapter_size), in each transformer layer:
  * houlsby: two adapters with a SiLU ("swish") bottleneck, one on the attention block's output and one on the
    feed-forward block's output, each applied after that block's dropout and before its LayerNorm:
        h = dropout(dense(x));  h = h + up(silu(down(h)));  out = LayerNorm(h + block_input)
  * pfeiffer: one adapter with a ReLU bottleneck on the feed-forward output only, fed with the block's LayerNorm
    applied once more (the same LayerNorm module, so no extra parameters):
        h = dropout(dense(x));  h = h + up(relu(down(LayerNorm(h + block_input))));  out = LayerNorm(h + block_input)
`down` is `adapter_A` (hidden -> adapter_size) and `up` is `adapter_B` (adapter_size -> hidden), both nn.Linear
with bias, initialised like every other linear layer of the model by its init_weights: weight ~ N(0,
initializer_range), bias 0. Tensor names are the fork's: <backbone>.encoder.layer.N.attention.output.adapter.
adapter_{A,B}.{weight,bias} (houlsby only) and <backbone>.encoder.layer.N.output.adapter.adapter_{A,B}.{...}.

Checkpoints:
  * every save of a model with adapters writes `pytorch_model_adapter.bin` and `model_adapter.safetensors`: the
    adapter tensors plus the head (every parameter outside the backbone), under the model's own names;
  * `--adapter_path` reads such a file, a save folder holding one, or an AdapterHub-style folder as the fork read it:
    `pytorch_adapter.bin` (keys <backbone>...{attention.output,output}.adapters.<name>.adapter_down.0.* /
    adapter_up.*) and `pytorch_model_head.bin` (heads.<name>.1.* the head's dense layer, heads.<name>.4.* its output
    layer). The adapter name is read from the keys (the fork required it to equal --task_name).
Loading is strict: every tensor of the file must land on a model tensor of the same shape and every adapter tensor
of the model must be in the file; anything else is a one-line ValueError naming the file and the first offender.
A head of another label count is left freshly initialised, with a warning (as for LoRA files).
"""
import os
import re

from torch import nn

from .activations import get_activation
from .lora import load_checked
from .utils import logging

logger = logging.get_logger(__name__)

ADAPTER_STATE_NAME = "pytorch_model_adapter.bin"
SAFE_ADAPTER_STATE_NAME = "model_adapter.safetensors"
HUB_ADAPTER_NAME = "pytorch_adapter.bin"  # AdapterHub / adapter-transformers: the adapter weights
HUB_HEAD_NAME = "pytorch_model_head.bin"  # ... and the prediction head

# adapter_type -> the bottleneck's activation (the fork's choice for each)
ADAPTER_ACTIVATIONS = {"houlsby": "swish", "pfeiffer": "relu"}


class Adapter(nn.Module):
    """Bottleneck adapter: residual + adapter_B(act(adapter_A(x))). With `norm_input` the caller feeds it the block's
    LayerNorm(h + block_input) instead of h (Pfeiffer); see `adapt`."""

    def __init__(self, hidden_size, size, activation, norm_input=False):
        super().__init__()
        self.adapter_A = nn.Linear(hidden_size, size)
        self.act = get_activation(activation)
        self.adapter_B = nn.Linear(size, hidden_size)
        self.norm_input = norm_input

    def forward(self, x, residual):
        return residual + self.adapter_B(self.act(self.adapter_A(x)))


def _settings(config):
    """(adapter_type, adapter_size) when config.apply_adapter, else None; ValueError on values the fork never had."""
    if not getattr(config, "apply_adapter", False):
        return None
    kind, size = getattr(config, "adapter_type", "houlsby"), getattr(config, "adapter_size", 64)
    if kind not in ADAPTER_ACTIVATIONS:
        raise ValueError(f"adapter_type {kind!r} is unknown: use houlsby or pfeiffer")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ValueError(f"apply_adapter needs a positive integer adapter_size, got {size!r} (the fork used 8-64)")
    return kind, size


def attention_adapter(config):
    """The adapter on the attention block's output (houlsby only), or None."""
    settings = _settings(config)
    if settings is None or settings[0] != "houlsby":
        return None
    return Adapter(config.hidden_size, settings[1], ADAPTER_ACTIVATIONS["houlsby"])


def ffn_adapter(config):
    """The adapter on the feed-forward block's output (houlsby and pfeiffer), or None."""
    settings = _settings(config)
    if settings is None:
        return None
    kind, size = settings
    return Adapter(config.hidden_size, size, ADAPTER_ACTIVATIONS[kind], norm_input=kind == "pfeiffer")


def adapt(adapter, hidden, block_input, layer_norm):
    """`hidden` (a block's output after its dropout) with the adapter's correction added; unchanged without one."""
    if adapter is None:
        return hidden
    return adapter(layer_norm(hidden + block_input) if adapter.norm_input else hidden, hidden)


# -- checkpoints ----------------------------------------------------------------------------------------------------
def is_adapter_key(name):
    return ".adapter.adapter_A." in name or ".adapter.adapter_B." in name


def _in_backbone(name, prefix):
    return bool(prefix) and name.startswith(prefix + ".")


def adapter_state_dict(model):
    """Adapter tensors plus the head (every parameter outside the backbone), detached CPU copies."""
    prefix = getattr(model, "base_model_prefix", "")
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters()
            if is_adapter_key(name) or not _in_backbone(name, prefix)}


_HUB_ADAPTER = re.compile(r"\.adapters\.([^.]+)\.")
_HUB_HEAD = re.compile(r"^heads\.([^.]+)\.(\d+)\.")


def from_adapterhub(adapter_sd, head_sd, head_layers, source):
    """AdapterHub keys -> the model's. `head_layers` maps the index of a layer in AdapterHub's head (its nn.Sequential
    position) to the model's module, e.g. {"1": "classifier.dense", "4": "classifier.out_proj"}. Keys that match
    no rule are kept as they are (the strict loader then names them)."""
    names = {m.group(1) for k in adapter_sd for m in [_HUB_ADAPTER.search(k)] if m}
    names |= {m.group(1) for k in head_sd for m in [_HUB_HEAD.match(k)] if m}
    if len(names) > 1:
        raise ValueError(f"{source}: holds adapters/heads named {', '.join(sorted(names))}: keep only one")
    out = {}
    for key, value in adapter_sd.items():
        key = _HUB_ADAPTER.sub(".adapter.", key)
        key = key.replace(".adapter_down.0.", ".adapter_A.").replace(".adapter_up.", ".adapter_B.")
        out[key] = value
    for key, value in head_sd.items():
        m = _HUB_HEAD.match(key)
        if m and m.group(2) in head_layers:
            key = f"{head_layers[m.group(2)]}.{key[m.end():]}"
        out[key] = value
    return out


def read_adapter_path(path, head_layers):
    """What `--adapter_path` accepts -> a state dict under the model's names: a file written at a save
    (pytorch_model_adapter.bin / model_adapter.safetensors), a save folder holding one, or an AdapterHub-style
    folder (pytorch_adapter.bin, with pytorch_model_head.bin when it has a head)."""
    from .modeling_utils import load_state_dict_file

    def read(file):
        try:
            return load_state_dict_file(file)
        except OSError as e:
            raise ValueError(str(e)) from None

    path = str(path)
    if not os.path.exists(path):
        raise ValueError(f"{path} does not exist: pass an adapter folder or {ADAPTER_STATE_NAME}")
    if not os.path.isdir(path):
        return from_adapterhub(read(path), {}, head_layers, path)
    hub_adapter, hub_head = os.path.join(path, HUB_ADAPTER_NAME), os.path.join(path, HUB_HEAD_NAME)
    if os.path.isfile(hub_adapter):
        head = {}
        if os.path.isfile(hub_head):
            head = read(hub_head)
        else:
            logger.warning(f"{path}: no {HUB_HEAD_NAME}, the classification head starts fresh")
        return from_adapterhub(read(hub_adapter), head, head_layers, path)
    for name in (SAFE_ADAPTER_STATE_NAME, ADAPTER_STATE_NAME):
        if os.path.isfile(os.path.join(path, name)):
            return read(os.path.join(path, name))
    raise ValueError(f"{path}: an adapter folder must hold {HUB_ADAPTER_NAME} (+ {HUB_HEAD_NAME}), "
                     f"{SAFE_ADAPTER_STATE_NAME} or {ADAPTER_STATE_NAME}")


def load_adapter_state_dict(model, state_dict_or_path, source=None):
    """Load adapters (+ head) strictly into `model` (see the module docstring). Returns {"loaded": [...],
    "reinitialised_head": [...]}; raises ValueError with one line when the file does not fit the model."""
    head_layers = getattr(model, "adapterhub_head_layers", {})
    if isinstance(state_dict_or_path, dict):
        source = source or "adapter state dict"
        sd = from_adapterhub(state_dict_or_path, {}, head_layers, source)
    else:
        source = source or str(state_dict_or_path)
        sd = read_adapter_path(state_dict_or_path, head_layers)
    own = model.state_dict()
    prefix = getattr(model, "base_model_prefix", "")
    model_adapters = [k for k in own if is_adapter_key(k)]
    file_adapters = [k for k in sd if is_adapter_key(k)]
    if not file_adapters:
        raise ValueError(f"{source}: holds no adapter tensors (.adapter.adapter_A/adapter_B, or AdapterHub's "
                         ".adapters.<name>.adapter_down/adapter_up): pass a file written by an adapter run")
    if not model_adapters:
        raise ValueError(f"{source}: holds adapter tensors ({file_adapters[0]}, ...) but the model has no adapters: "
                         "pass --apply_adapter with the adapter_type and adapter_size used in training")
    kind = getattr(model.config, "adapter_type", None)
    unknown = [k for k in sd if k not in own]
    if unknown:
        houlsby_file = not any(".attention." in k for k in model_adapters) and any(".attention." in k for k in unknown)
        hint = (f"the file has attention adapters (houlsby) but the model is {kind}" if houlsby_file
                else "the file belongs to another model or architecture")
        raise ValueError(f"{source}: {len(unknown)} tensor(s) match no model tensor, e.g. {unknown[0]}: {hint}")
    bad = [(k, list(sd[k].shape), list(own[k].shape)) for k in sd if sd[k].shape != own[k].shape]
    backbone_bad = [b for b in bad if _in_backbone(b[0], prefix)]
    if backbone_bad:
        k, got, want = backbone_bad[0]
        hint = ("the file was trained with another adapter_size" if is_adapter_key(k)
                else "the file belongs to another model size")
        raise ValueError(f"{source}: {k} has shape {got} in the file but {want} in the model "
                         f"({len(backbone_bad)} mismatched): {hint}")
    missing = [k for k in model_adapters if k not in sd]
    if missing:
        pfeiffer_file = not any(".attention." in k for k in file_adapters)
        hint = (f"the file has no attention adapters (pfeiffer) but the model is {kind}" if pfeiffer_file
                else "the file is incomplete or from a model with fewer layers")
        raise ValueError(f"{source}: {len(missing)} adapter tensor(s) of the model are missing from the file, e.g. "
                         f"{missing[0]}: {hint}")
    return load_checked(model, sd, bad, source, "the adapters")  # bad: only head tensors are left in it here
