"""Auto classes: pick the config, model or tokenizer class from config.json's `model_type`.

Each model family registers one line per table below.
"""
import importlib
import json
import os

from ...configuration_utils import PretrainedConfig
from ...file_utils import CONFIG_NAME, resolve_file

# model_type -> (module under transformers.models, config, base model, sequence classifier, tokenizer)
MODEL_TYPES = {
    "roberta": ("roberta", "RobertaConfig", "RobertaModel", "RobertaForSequenceClassification",
                "RobertaTokenizerFast"),
    "bert": ("bert", "BertConfig", "BertModel", "BertForSequenceClassification", "BertTokenizerFast"),
    "deberta-v2": ("deberta_v2", "DebertaV2Config", "DebertaV2Model", "DebertaV2ForSequenceClassification",
                   "DebertaV2TokenizerFast"),
}

_HUB_KWARGS = ("cache_dir", "revision", "use_auth_token", "local_files_only", "force_download", "proxies",
               "resume_download", "mirror")


def _entry(model_type, column):
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type '{model_type}' is not supported: this toolkit has {sorted(MODEL_TYPES)}")
    module = importlib.import_module(f"transformers.models.{MODEL_TYPES[model_type][0]}")
    return getattr(module, MODEL_TYPES[model_type][column])


def _guess_model_type(name):
    """Old configs may lack model_type: 4.4.2 then matched the type's name inside the path, longest first."""
    for model_type in sorted(MODEL_TYPES, key=len, reverse=True):
        if model_type.replace("_", "-") in str(name) or model_type in str(name):
            return model_type
    return None


class AutoConfig:
    def __init__(self):
        raise EnvironmentError("use AutoConfig.from_pretrained(...) or AutoConfig.for_model(...)")

    @classmethod
    def for_model(cls, model_type, *args, **kwargs):
        return _entry(model_type, 1)(*args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        config_dict, _ = PretrainedConfig.get_config_dict(
            pretrained_model_name_or_path, **{k: kwargs[k] for k in _HUB_KWARGS if k in kwargs})
        model_type = config_dict.get("model_type") or _guess_model_type(pretrained_model_name_or_path)
        if model_type is None:
            raise ValueError(f"{pretrained_model_name_or_path}: config.json has no model_type and the name does not "
                             f"tell it: add \"model_type\" (one of {sorted(MODEL_TYPES)}) to config.json")
        return _entry(model_type, 1).from_dict(config_dict, **{k: v for k, v in kwargs.items()
                                                               if k not in _HUB_KWARGS})


class _AutoModel:
    _column = None

    def __init__(self):
        raise EnvironmentError(f"use {type(self).__name__}.from_pretrained(...) or .from_config(config)")

    @classmethod
    def _class_for(cls, config):
        for model_type in MODEL_TYPES:
            if type(config) is _entry(model_type, 1):
                return _entry(model_type, cls._column)
        raise ValueError(f"{type(config).__name__} has no {cls.__name__} here: supported model types are "
                         f"{sorted(MODEL_TYPES)}")

    @classmethod
    def from_config(cls, config):
        return cls._class_for(config)(config)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        config = kwargs.pop("config", None)
        if not isinstance(config, PretrainedConfig):
            hub = {k: kwargs.pop(k) for k in _HUB_KWARGS if k in kwargs}
            config, kwargs = AutoConfig.from_pretrained(config or pretrained_model_name_or_path,
                                                        return_unused_kwargs=True, **hub, **kwargs)
            kwargs.update(hub)
        return cls._class_for(config).from_pretrained(pretrained_model_name_or_path, *model_args, config=config,
                                                      **kwargs)


class AutoModel(_AutoModel):
    _column = 2


class AutoModelForSequenceClassification(_AutoModel):
    _column = 3


class AutoTokenizer:
    def __init__(self):
        raise EnvironmentError("use AutoTokenizer.from_pretrained(...)")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *inputs, **kwargs):
        """Tokenizer class from tokenizer_config.json's tokenizer_class, else config.json's model_type; its fast
        variant unless use_fast=False (as in 4.4.2: hub configs name the slow class, e.g. DebertaV2Tokenizer)."""
        use_fast = kwargs.pop("use_fast", True)
        config = kwargs.pop("config", None)
        hub = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
        path = str(pretrained_model_name_or_path)
        tokenizer_class = None
        found = None if os.path.isfile(path) else resolve_file(path, "tokenizer_config.json", **hub)
        if found:
            with open(found, encoding="utf-8") as f:
                tokenizer_class = json.load(f).get("tokenizer_class")
        if tokenizer_class:
            slow = tokenizer_class[:-len("Fast")] if tokenizer_class.endswith("Fast") else tokenizer_class
            for model_type in MODEL_TYPES:
                module = importlib.import_module(f"transformers.models.{MODEL_TYPES[model_type][0]}")
                for name in ((slow + "Fast", slow) if use_fast else (slow, slow + "Fast")):
                    if hasattr(module, name):
                        return getattr(module, name).from_pretrained(path, *inputs, **kwargs)
        if config is None and not os.path.isfile(path):
            if resolve_file(path, CONFIG_NAME, **hub) is not None:
                config = AutoConfig.from_pretrained(path, **hub)
        model_type = config.model_type if config is not None else _guess_model_type(path)
        if model_type is None:
            raise ValueError(f"{path}: cannot tell which tokenizer to use (no tokenizer_config.json with "
                             "tokenizer_class, no config.json with model_type): save the tokenizer with "
                             "save_pretrained or add a config.json")
        tokenizer = _entry(model_type, 4)  # the fast class; its slow twin drops the suffix
        if not use_fast:
            module = importlib.import_module(f"transformers.models.{MODEL_TYPES[model_type][0]}")
            tokenizer = getattr(module, tokenizer.__name__[:-len("Fast")], tokenizer)
        return tokenizer.from_pretrained(path, *inputs, **kwargs)
