"""Loading what a parameter-efficient run trained (LoRA or adapter tensors, plus the head) into a model, strictly.

The top of the LoRA/adapter stack: it uses the layers (`lora`, `adapters`), the name rules (`parameter_groups`) and
the LoRA file layouts (`lora_interop`), and nothing below imports it.

- `load_lora_state_dict`: `--lora_path`, i.e. the fork's pytorch_model_lora.bin / model_lora.safetensors (and the
  paper's released files), a PEFT adapter folder, or a save folder of the trainer (see lora_interop.read_lora_path);
- `load_adapter_state_dict`: `--adapter_path`, i.e. the pytorch_model_adapter.bin / model_adapter.safetensors every
  save of an adapter model writes, a save folder holding one, or an AdapterHub-style folder as the fork read it:
  `pytorch_adapter.bin` (keys <backbone>...{attention.output,output}.adapters.<name>.adapter_down.0.* /
  adapter_up.*) and `pytorch_model_head.bin` (heads.<name>.1.* the head's dense layer, heads.<name>.4.* its output
  layer). The adapter name is read from the keys (the fork required it to equal --task_name).

Both are strict: every tensor of the file must land on a model tensor of the same shape, no frozen backbone tensor
may be in it, and every LoRA/adapter tensor of the model must be in it; anything else is a one-line ValueError
naming the file and the first offender. A head of another label count (an MNLI warm start for RTE) is left freshly
initialised, with a warning (`load_checked`).
"""
import os
import re

from .adapters import ADAPTER_STATE_NAME, SAFE_ADAPTER_STATE_NAME
from .lora_interop import check_adapter_fits, read_lora_path
from .modeling_utils import load_state_dict_file
from .parameter_groups import backbone_of, head_in_backbone, in_backbone, is_adapter_key, is_head, is_lora_key
from .utils import logging

logger = logging.get_logger(__name__)

HUB_ADAPTER_NAME = "pytorch_adapter.bin"  # AdapterHub / adapter-transformers: the adapter weights
HUB_HEAD_NAME = "pytorch_model_head.bin"  # ... and the prediction head


# -- LoRA -----------------------------------------------------------------------------------------------------------
def load_lora_state_dict(model, state_dict_or_path, source=None):
    """Load a LoRA (+head) checkpoint strictly: every tensor must exist in the model with the same shape and every
    LoRA tensor of the model must be in the file. A head whose shape differs (another label count, e.g. an MNLI
    warm start for RTE) is left freshly initialised, with a warning. Raises ValueError with one line otherwise.

    A path may be a legacy file, a PEFT adapter folder (its lora_alpha / r must match the model's) or a save folder
    of the trainer (see lora_interop.read_lora_path)."""
    adapter_config = None
    if isinstance(state_dict_or_path, dict):
        sd, source = state_dict_or_path, source or "LoRA state dict"
    else:
        source = source or str(state_dict_or_path)
        sd, adapter_config = read_lora_path(state_dict_or_path)
    if not sd:
        raise ValueError(f"{source}: the file holds no tensors: pass a pytorch_model_lora.bin written by training")
    own = model.state_dict()
    backbone = backbone_of(model)
    model_lora = [k for k in own if is_lora_key(k)]
    file_lora = [k for k in sd if is_lora_key(k)]
    if file_lora and not model_lora:
        raise ValueError(f"{source}: holds LoRA tensors ({file_lora[0]}, ...) but the model has no LoRA layers: "
                         "pass --apply_lora with the lora_r used in training")

    frozen = [k for k in sd if not is_lora_key(k) and in_backbone(k, backbone)]
    if frozen:  # loading them would overwrite pretrained weights that LoRA keeps frozen
        raise ValueError(f"{source}: holds {len(frozen)} frozen backbone tensor(s), e.g. {frozen[0]}, so it is not "
                         "a LoRA file: pass the pytorch_model_lora.bin / model_lora.safetensors of a LoRA run")
    unknown = [k for k in sd if k not in own]
    if unknown:
        raise ValueError(f"{source}: {len(unknown)} tensor(s) match no model tensor, e.g. {unknown[0]}: the file "
                         "belongs to another model or architecture")
    bad = _head_shape_mismatches(sd, own, backbone, source, is_lora_key, "lora_r")
    missing = [k for k in model_lora if k not in sd]
    if missing:
        raise ValueError(f"{source}: {len(missing)} LoRA tensor(s) of the model are missing from the file, e.g. "
                         f"{missing[0]}: the file is incomplete or from a model with fewer layers/targets")
    if adapter_config is not None:
        check_adapter_fits(model, adapter_config, source)
    kept = [k for k, p in model.named_parameters() if head_in_backbone(k, backbone) and k not in sd]
    if kept:  # a file from before BERT's pooler joined the head, when it stayed frozen at the base's values
        logger.warning(f"{source}: has no {', '.join(kept)} (written while that head layer was frozen with the "
                       "backbone); the base model's values are kept, as in the run that wrote it")
    return load_checked(model, sd, bad, source, "the LoRA tensors")


# -- adapters -------------------------------------------------------------------------------------------------------
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
    backbone = backbone_of(model)
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
    bad = _head_shape_mismatches(sd, own, backbone, source, is_adapter_key, "adapter_size")
    missing = [k for k in model_adapters if k not in sd]
    if missing:
        pfeiffer_file = not any(".attention." in k for k in file_adapters)
        hint = (f"the file has no attention adapters (pfeiffer) but the model is {kind}" if pfeiffer_file
                else "the file is incomplete or from a model with fewer layers")
        raise ValueError(f"{source}: {len(missing)} adapter tensor(s) of the model are missing from the file, e.g. "
                         f"{missing[0]}: {hint}")
    return load_checked(model, sd, bad, source, "the adapters")  # bad: only head tensors are left in it here


# -- shared ---------------------------------------------------------------------------------------------------------
def _head_shape_mismatches(sd, own, backbone, source, is_method_key, size_flag):
    """(key, file shape, model shape) of every tensor whose shape differs, all in the head (another label count);
    a backbone tensor of another shape is a one-line ValueError (the method's tensors: another `size_flag`)."""
    bad = [(k, list(sd[k].shape), list(own[k].shape)) for k in sd if sd[k].shape != own[k].shape]
    backbone_bad = [b for b in bad if in_backbone(b[0], backbone)]
    if backbone_bad:
        k, got, want = backbone_bad[0]
        hint = (f"the file was trained with another {size_flag}" if is_method_key(k)
                else "the file belongs to another model size")
        raise ValueError(f"{source}: {k} has shape {got} in the file but {want} in the model "
                         f"({len(backbone_bad)} mismatched): {hint}")
    return bad


def load_checked(model, sd, bad, source, what):
    """Load a checked method (+ head) state dict. `bad` lists (key, file shape, model shape) of the head tensors
    whose shape differs (another label count): then the whole head stays freshly initialised, with a warning."""
    backbone = backbone_of(model)
    skipped = [k for k in sd if is_head(k, backbone)] if bad else []
    if bad:
        logger.warning(f"{source}: head shape differs ({bad[0][0]}: file {bad[0][1]} vs model {bad[0][2]}, "
                       f"another label count); the head is re-initialised and only {what} are loaded")
    model.load_state_dict({k: v for k, v in sd.items() if k not in skipped}, strict=False)
    return {"loaded": [k for k in sd if k not in skipped], "reinitialised_head": skipped}
