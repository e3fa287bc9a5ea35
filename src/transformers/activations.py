"""Activation functions by their config name (hidden_act, pooler_hidden_act, conv_act)."""
import math

import torch
import torch.nn.functional as F


def gelu_new(x):
    """The tanh approximation of GELU (OpenAI GPT / BERT-TF)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gelu_fast(x):
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


ACT2FN = {
    "gelu": F.gelu,
    "gelu_python": lambda x: x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))),
    "gelu_new": gelu_new,
    "gelu_fast": gelu_fast,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "mish": F.mish,
    "linear": lambda x: x,
}


def get_activation(name):
    if callable(name):
        return name
    if name not in ACT2FN:
        raise KeyError(f"activation '{name}' is unknown: use one of {sorted(ACT2FN)}")
    return ACT2FN[name]


def _gelu_python(x):
    """GELU from its definition, x * Phi(x) (4.4.2 kept it for old PyTorch versions)."""
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu(x):
    return F.gelu(x)


ACT2FN["gelu_python"] = _gelu_python
