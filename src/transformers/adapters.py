"""Bottleneck adapters placed as in the LoRA paper's NLU fork, and the adapter + head state dict a save writes.

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

Every save of a model with adapters writes `adapter_state_dict` (the adapter tensors plus the head, every parameter
outside the backbone, under the model's own names) as ADAPTER_STATE_NAME and SAFE_ADAPTER_STATE_NAME. Reading those
files and AdapterHub folders back (`--adapter_path`, `load_adapter_state_dict`) lives in
`transformers.method_loading`, one layer up; this module reads and writes no files.
"""
from torch import nn

from .activations import get_activation
from .parameter_groups import backbone_of, is_adapter_key, is_head  # is_adapter_key stays importable from here

ADAPTER_STATE_NAME = "pytorch_model_adapter.bin"
SAFE_ADAPTER_STATE_NAME = "model_adapter.safetensors"

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


def adapter_state_dict(model):
    """Adapter tensors plus the head (parameter_groups.is_head), detached CPU copies."""
    backbone = backbone_of(model)
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters()
            if is_adapter_key(name) or is_head(name, backbone)}
