"""PreTrainedModel: weight init, from_pretrained (local folder or hub cache) and save_pretrained."""
import json
import os
import re
import struct

import torch
from torch import nn

from .configuration_utils import PretrainedConfig
from .file_utils import SAFE_WEIGHTS_NAME, WEIGHTS_NAME, resolve_file
from .safe_loading import UnreadableCheckpoint, describe_object, reading_error, torch_load
from .utils import logging

logger = logging.get_logger(__name__)

_HUB_KWARGS = ("cache_dir", "revision", "use_auth_token", "local_files_only", "force_download", "proxies",
               "resume_download", "mirror")


_ANY_WEIGHTS = "a file written by torch.save(state_dict) or safetensors"


def load_state_dict_file(path, expected=_ANY_WEIGHTS):
    """Read a safetensors or torch checkpoint into a dict of CPU tensors; never unpickles arbitrary objects.
    UnreadableCheckpoint (an OSError) with one line when the file is missing, damaged, pickled code or not a state
    dict (then the line ends with 'pass <expected>')."""
    path = str(path)
    if not path.endswith(".safetensors"):
        return _as_state_dict(torch_load(path), path, expected)
    if not os.path.isfile(path):
        raise UnreadableCheckpoint(f"{path} does not exist")
    from safetensors.torch import load_file

    try:
        sd = load_file(path, device="cpu")
    except Exception as e:  # noqa: BLE001 - any reader failure means the same thing to the user
        raise UnreadableCheckpoint(reading_error(path, e)) from None
    return _as_state_dict(sd, path, expected)


def _as_state_dict(sd, path, expected):
    """`sd` as a dict of tensors (unwrapping {"state_dict": ...}), else UnreadableCheckpoint saying what it is."""
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        what = describe_object(sd) or "something other than a state dict of tensors"
        raise UnreadableCheckpoint(f"{path} holds {what}: pass {expected}")
    return sd


class _StoredTensor:
    """A checkpoint tensor not read yet: its shape, dtype and where its bytes start in the file. from_pretrained
    reads each one straight into the model's tensor, so loading never holds a second copy of the weights."""

    def __init__(self, path, shape, dtype, offset):
        self.path, self.shape, self.dtype, self.offset = path, torch.Size(shape), dtype, offset

    def copy_to(self, target):
        direct = target.dtype == self.dtype and target.is_contiguous() and target.device.type == "cpu"
        buffer = target if direct else torch.empty(self.shape, dtype=self.dtype)
        view = memoryview(buffer.reshape(-1).view(torch.uint8).numpy())
        done = 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            while done < len(view):
                got = f.readinto(view[done:])
                if not got:
                    raise UnreadableCheckpoint(f"{self.path} is truncated or damaged (it ends inside a tensor): "
                                               "write or download it again")
                done += got
        if not direct:  # another dtype or device: converted by copy_, as load_state_dict does
            target.copy_(buffer)


# safetensors' dtype names (header "dtype") as torch dtypes
_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": getattr(torch, "float8_e4m3fn", None), "F8_E5M2": getattr(torch, "float8_e5m2", None),
    "C64": torch.complex64, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U64": getattr(torch, "uint64", None), "U32": getattr(torch, "uint32", None),
    "U16": getattr(torch, "uint16", None), "U8": torch.uint8, "BOOL": torch.bool,
}


def _stored_safetensors(path):
    """name -> _StoredTensor of a safetensors file (8-byte little-endian header size, JSON header, raw bytes)."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as f:  # safetensors' own checks describe a damaged file as before
            names = list(f.keys())
        with open(path, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(size))
    except Exception as e:  # noqa: BLE001 - any reader failure means the same thing to the user
        raise UnreadableCheckpoint(reading_error(path, e)) from None
    stored = {}
    for name in names:
        dtype = _SAFETENSORS_DTYPES.get(header[name]["dtype"])
        if dtype is None:
            raise UnreadableCheckpoint(f"{path} holds {name} as {header[name]['dtype']}, a dtype torch cannot read")
        stored[name] = _StoredTensor(path, header[name]["shape"], dtype, 8 + size + header[name]["data_offsets"][0])
    return stored


def _stored_torch_file(path):
    """name -> _StoredTensor of a torch.save zip file. Its pickle is read onto the meta device, which gives each
    storage's offset in the file; a legacy (non-zip) file, an older torch or a strided tensor is read whole."""
    stored = _as_state_dict(torch_load(path, map_location="meta"), path, _ANY_WEIGHTS)
    offsets = {k: getattr(v.untyped_storage(), "_checkpoint_offset", None) for k, v in stored.items()}
    if any(o is None for o in offsets.values()) or not all(v.is_contiguous() for v in stored.values()):
        return load_state_dict_file(path)
    return {k: _StoredTensor(path, v.shape, v.dtype, offsets[k] + v.storage_offset() * v.element_size())
            for k, v in stored.items()}


def _stored_tensors(path):
    """The tensors of a weights file, to be read one at a time by from_pretrained (see _StoredTensor)."""
    path = str(path)
    if not path.endswith(".safetensors"):
        return _stored_torch_file(path)
    if not os.path.isfile(path):
        raise UnreadableCheckpoint(f"{path} does not exist")
    return _stored_safetensors(path)


def pretrained_weights_file(path, **hub):
    """The weights file from_pretrained reads for `path`: the file itself, else model.safetensors (preferred) or
    pytorch_model.bin of a folder or hub id. OSError with one line when there is neither."""
    path = str(path)
    if os.path.isfile(path):
        return path
    found = resolve_file(path, SAFE_WEIGHTS_NAME, **hub) or resolve_file(path, WEIGHTS_NAME, **hub)
    if found is None:
        raise OSError(f"{path} has neither {SAFE_WEIGHTS_NAME} nor {WEIGHTS_NAME}: "
                      "pass a folder written by save_pretrained or a model id with PyTorch weights")
    return found


def _rename_legacy_keys(state_dict):
    """Old TF-converted checkpoints name LayerNorm parameters gamma/beta."""
    out = {}
    for key, value in state_dict.items():
        new = re.sub(r"\.gamma$", ".weight", key)
        new = re.sub(r"\.beta$", ".bias", new)
        out[new] = value
    return out


class LoadingReport:
    """Which tensors of `name` did not come from the checkpoint at `source`, and which of its tensors went unused;
    `emit()` logs it.

    LoRA and adapter tensors are new by design (a pretrained checkpoint never has them): they are reported at info
    level. Anything else that keeps its initial values is a warning, since the model is not usable before training.
    from_pretrained emits the report at once, unless it is told `defer_loading_report=True`: then a caller that fills
    more tensors afterwards (run_glue's --lora_path / --adapter_path file holds the LoRA or adapter tensors and the
    head) calls `supplied_by(file, names)` first, so only tensors that really stay at their initial values are
    reported as such."""

    def __init__(self, name, source, missing, unexpected, mismatched):
        self.name, self.source = name, source
        self.missing, self.unexpected, self.mismatched = list(missing), list(unexpected), list(mismatched)
        self.filled_later = []  # (file, how many of the tensors above it supplied)

    def supplied_by(self, source, names):
        names = set(names)
        before = len(self.missing) + len(self.mismatched)
        self.missing = [k for k in self.missing if k not in names]
        self.mismatched = [m for m in self.mismatched if m[0] not in names]
        count = before - len(self.missing) - len(self.mismatched)
        if count:
            self.filled_later.append((source, count))

    def emit(self):
        name, source = self.name, self.source
        fresh = self.missing + [f"{k} (checkpoint {list(g)} vs model {list(w)})" for k, g, w in self.mismatched]
        by_design = [k for k in fresh if "lora_" in k or ".adapter." in k]
        others = [k for k in fresh if k not in by_design]
        for file, count in self.filled_later:
            logger.info(f"{name}: {count} tensor(s) absent from {source} are taken from {file}")
        if by_design:
            logger.info(f"{name}: {len(by_design)} LoRA/adapter tensors start from their initialisation")
        if others:
            logger.warning(f"{name}: {len(others)} tensor(s) are not in {source} and start from random values, so "
                           f"train the model before using its predictions: {others}")
        if self.unexpected:
            logger.warning(f"{name}: {len(self.unexpected)} tensor(s) of {source} have no place in this model and "
                           "are skipped (fine for a checkpoint of another head or pretraining task, wrong otherwise): "
                           f"{self.unexpected}")
        if not fresh and not self.unexpected:
            sources = " and ".join([str(source)] + [str(file) for file, _ in self.filled_later])
            logger.info(f"{name}: every tensor loaded from {sources}")


def _independent_tensors(state_dict):
    """The tensors as safetensors accepts them (contiguous, no two sharing memory): a tensor is copied only when it
    is strided or its storage already went to another key (tied weights), so saving never holds a second copy of
    the whole model."""
    out, seen = {}, set()
    for key, value in state_dict.items():
        value = value.detach().cpu()
        storage = value.untyped_storage().data_ptr()
        if storage in seen or not value.is_contiguous():
            value = value.contiguous().clone()
        else:
            seen.add(storage)
        out[key] = value
    return out


class PreTrainedModel(nn.Module):
    config_class = PretrainedConfig
    base_model_prefix = ""
    _keys_to_ignore_on_load_missing = None
    _keys_to_ignore_on_load_unexpected = None

    def __init__(self, config, *inputs, **kwargs):
        super().__init__()
        if not isinstance(config, PretrainedConfig):
            raise ValueError(f"{self.__class__.__name__} expects a PretrainedConfig, got {type(config).__name__}: "
                             f"build one with {self.config_class.__name__}(...) or AutoConfig.from_pretrained(...)")
        self.config = config
        self.name_or_path = getattr(config, "_name_or_path", "")

    # -- structure ----------------------------------------------------------------------------------------------
    @property
    def base_model(self):
        return getattr(self, self.base_model_prefix, self)

    @property
    def device(self):
        return next(self.parameters()).device

    @property
    def dtype(self):
        return next(self.parameters()).dtype

    def get_input_embeddings(self):
        """The token embedding table (every backbone here keeps it at embeddings.word_embeddings)."""
        return self.base_model.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.base_model.embeddings.word_embeddings = value

    def get_output_embeddings(self):
        """None: no model here has a language-modelling head tied to the input embeddings."""
        return None

    def resize_token_embeddings(self, new_num_tokens=None):
        """Grow or shrink the token embedding table to `new_num_tokens` rows (kept rows keep their weights, new
        ones are initialised like the model's weights); updates config.vocab_size. None: just return the table."""
        old = self.get_input_embeddings()
        if new_num_tokens is None or new_num_tokens == old.num_embeddings:
            return old
        new = nn.Embedding(new_num_tokens, old.embedding_dim, padding_idx=old.padding_idx
                           if old.padding_idx is not None and old.padding_idx < new_num_tokens else None)
        new.to(device=old.weight.device, dtype=old.weight.dtype)
        self._init_weights(new)
        kept = min(old.num_embeddings, new_num_tokens)
        with torch.no_grad():
            new.weight[:kept] = old.weight[:kept]
        self.set_input_embeddings(new)
        self.config.vocab_size = new_num_tokens
        if hasattr(self.base_model, "config"):
            self.base_model.config.vocab_size = new_num_tokens
        return new

    # RoBERTa's 4.4.2 initialisation leaves an embedding's padding row random; BERT's and DeBERTa's zero it.
    _init_zero_padding_row = True

    def _init_weights(self, module):
        """BERT-style initialisation of one submodule (init_weights visits them all, in module order): linear and
        embedding weights ~ N(0, initializer_range), linear biases 0, LayerNorm the identity (weight 1, bias 0).
        loralib's lora_A (Kaiming uniform) and lora_B (zeros) keep their own initialisation."""
        if isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()
        elif isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.data.zero_()
            padding_row = getattr(module, "padding_idx", None)
            if padding_row is not None and self._init_zero_padding_row:
                module.weight.data[padding_row].zero_()

    def init_weights(self):
        self.apply(self._init_weights)

    def num_parameters(self, only_trainable=False):
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    # -- saving ---------------------------------------------------------------------------------------------------
    def save_pretrained(self, save_directory, state_dict=None, safe_serialization=True):
        """Write config.json and the weights (model.safetensors, or pytorch_model.bin when safe_serialization=False).

        Each file is written to a temporary name and renamed, so a crash never leaves a half-written checkpoint."""
        if os.path.isfile(save_directory):
            raise ValueError(f"{save_directory} is a file: save_pretrained needs a directory")
        os.makedirs(save_directory, exist_ok=True)
        self.config.architectures = [self.__class__.__name__]
        self.config.save_pretrained(save_directory)
        if state_dict is None:
            state_dict = self.state_dict()
        state_dict = _independent_tensors(state_dict)
        name = SAFE_WEIGHTS_NAME if safe_serialization else WEIGHTS_NAME
        final = os.path.join(save_directory, name)
        tmp = final + ".tmp"
        if safe_serialization:
            from safetensors.torch import save_file
            save_file(state_dict, tmp, metadata={"format": "pt"})
        else:
            torch.save(state_dict, tmp)
        os.replace(tmp, final)
        other = os.path.join(save_directory, WEIGHTS_NAME if safe_serialization else SAFE_WEIGHTS_NAME)
        if os.path.isfile(other):  # a stale twin would be preferred or confused with the new weights
            os.remove(other)
        logger.info(f"{len(state_dict)} weight tensors written to {final}")

    # -- loading --------------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, state_dict=None,
                        output_loading_info=False, ignore_mismatched_sizes=False, defer_loading_report=False,
                        **kwargs):
        """Build the model from `config.json` and load `model.safetensors` (preferred) or `pytorch_model.bin`.

        `pretrained_model_name_or_path` is a local folder or a hub id (read through huggingface_hub's cache; offline
        when HF_HUB_OFFLINE=1). Keyword arguments the config knows (num_labels, apply_lora, lora_r, ...) override it.
        Returns the model in eval mode, like 4.4.2. With `defer_loading_report=True` (needs output_loading_info) the
        log lines on tensors that did not come from the checkpoint are not written: the loading info carries them as
        a LoadingReport under "loading_report", for the caller to `emit()` once it has loaded the rest.
        """
        if defer_loading_report and not output_loading_info:
            raise ValueError("defer_loading_report=True needs output_loading_info=True: the deferred report is "
                             "returned in the loading info")
        hub = {k: kwargs.pop(k) for k in _HUB_KWARGS if k in kwargs}
        kwargs.pop("from_tf", None)
        path = str(pretrained_model_name_or_path) if pretrained_model_name_or_path is not None else None
        if not isinstance(config, PretrainedConfig):
            config, model_kwargs = cls.config_class.from_pretrained(
                config if config is not None else path, return_unused_kwargs=True, **hub, **kwargs)
        else:
            model_kwargs = kwargs
        config._name_or_path = path

        if state_dict is None:
            archive = pretrained_weights_file(path, **hub) if path is not None else None
            state_dict = _stored_tensors(archive) if archive else {}  # only names, shapes and offsets so far

        model = cls(config, *model_args, **model_kwargs)
        info = model._load_pretrained_state_dict(state_dict, path, ignore_mismatched_sizes)
        report = info.pop("loading_report")
        if defer_loading_report:
            info["loading_report"] = report
        else:
            report.emit()
        model.eval()
        return (model, info) if output_loading_info else model

    def aligned_state_dict(self, state_dict):
        """A pretrained checkpoint's tensors under this model's names (legacy LayerNorm names, with or without the
        base model's prefix). Values are passed through untouched (tensors, or from_pretrained's _StoredTensor)."""
        state_dict = _rename_legacy_keys(state_dict)
        prefix = self.base_model_prefix
        has_base = prefix and hasattr(self, prefix)
        loaded_has_prefix = any(k.startswith(prefix + ".") for k in state_dict)
        if has_base and not loaded_has_prefix:  # a bare base-model checkpoint into a model with a head
            return {f"{prefix}.{k}": v for k, v in state_dict.items()}
        if not has_base and loaded_has_prefix:  # a head-model checkpoint into the bare base model
            return {k[len(prefix) + 1:] if k.startswith(prefix + ".") else k: v for k, v in state_dict.items()}
        return state_dict

    def _load_pretrained_state_dict(self, state_dict, source, ignore_mismatched_sizes):
        state_dict = self.aligned_state_dict(state_dict)
        expected = self.state_dict()
        mismatched = [(k, tuple(v.shape), tuple(expected[k].shape)) for k, v in state_dict.items()
                      if k in expected and v.shape != expected[k].shape]
        if mismatched and not ignore_mismatched_sizes:
            k, got, want = mismatched[0]
            raise RuntimeError(f"{source}: tensor {k} has shape {list(got)} in the checkpoint but {list(want)} in "
                               f"the model ({len(mismatched)} mismatched): fix the config, or pass "
                               "ignore_mismatched_sizes=True to re-initialise them")
        for k, _, _ in mismatched:
            del state_dict[k]

        with torch.no_grad():  # in the model's order, as load_state_dict copies (the last of tied names wins)
            for k, target in expected.items():
                value = state_dict.get(k)
                if isinstance(value, _StoredTensor):
                    value.copy_to(target)
                elif value is not None:
                    target.copy_(value)
        # torch's own missing/unexpected lists: each value is the model's tensor itself (copying it onto itself is a
        # no-op), or for a name the model lacks, an empty tensor that is never read
        result = self.load_state_dict({k: expected.get(k, torch.empty(0)) for k in state_dict}, strict=False)
        resized = {k for k, _, _ in mismatched}  # reported once, as mismatched, not also as missing
        missing = [k for k in result.missing_keys if k not in resized]
        unexpected = list(result.unexpected_keys)
        for patterns, keys in ((self._keys_to_ignore_on_load_missing, missing),
                               (self._keys_to_ignore_on_load_unexpected, unexpected)):
            if patterns:
                keys[:] = [k for k in keys if not any(re.search(p, k) for p in patterns)]

        return {"missing_keys": missing, "unexpected_keys": unexpected,
                "mismatched_keys": [k for k, _, _ in mismatched], "error_msgs": [],
                "loading_report": LoadingReport(self.__class__.__name__, source, missing, unexpected, mismatched)}


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DataParallel / DistributedDataParallel / DeepSpeed wrappers (each keeps it as `.module`)."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model
