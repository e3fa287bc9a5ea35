"""PretrainedConfig: a bag of hyper-parameters that round-trips through config.json.

Unknown keyword arguments become attributes, so the LoRA fork's flags (apply_lora, lora_r, lora_alpha, cls_dropout,
...) travel in config.json without every model having to declare them.
"""
import copy
import json
import os

from .file_utils import CONFIG_NAME, resolve_file
from .utils import logging

logger = logging.get_logger(__name__)

_HUB_KWARGS = ("cache_dir", "revision", "use_auth_token", "local_files_only", "force_download", "proxies",
               "resume_download", "mirror")


class PretrainedConfig:
    model_type = ""
    is_composition = False  # 4.4.2: True only for configs made of other configs (encoder-decoder), none here

    def __init__(self, **kwargs):
        self.return_dict = kwargs.pop("return_dict", True)
        self.output_hidden_states = kwargs.pop("output_hidden_states", False)
        self.output_attentions = kwargs.pop("output_attentions", False)
        self.torchscript = kwargs.pop("torchscript", False)
        self.is_encoder_decoder = kwargs.pop("is_encoder_decoder", False)
        self.is_decoder = kwargs.pop("is_decoder", False)
        self.add_cross_attention = kwargs.pop("add_cross_attention", False)
        self.chunk_size_feed_forward = kwargs.pop("chunk_size_feed_forward", 0)
        self.architectures = kwargs.pop("architectures", None)
        self.finetuning_task = kwargs.pop("finetuning_task", None)
        self.problem_type = kwargs.pop("problem_type", None)
        self.tokenizer_class = kwargs.pop("tokenizer_class", None)
        self.pad_token_id = kwargs.pop("pad_token_id", None)
        self.bos_token_id = kwargs.pop("bos_token_id", None)
        self.eos_token_id = kwargs.pop("eos_token_id", None)
        self.sep_token_id = kwargs.pop("sep_token_id", None)

        id2label = kwargs.pop("id2label", None)
        num_labels = kwargs.pop("num_labels", None)
        label2id = kwargs.pop("label2id", None)
        if id2label is not None:
            self.id2label = {int(k): v for k, v in id2label.items()}
            if num_labels is not None and num_labels != len(self.id2label):
                self.num_labels = num_labels  # an explicit num_labels wins: rebuild the default names
        else:
            self.num_labels = 2 if num_labels is None else num_labels
        if label2id is not None and len(label2id) == len(self.id2label):
            self.label2id = {k: int(v) for k, v in label2id.items()}
        else:
            self.label2id = {v: k for k, v in self.id2label.items()}

        kwargs.pop("transformers_version", None)
        for key, value in kwargs.items():
            setattr(self, key, value)

    # -- labels ---------------------------------------------------------------------------------------------
    @property
    def num_labels(self):
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n):
        if getattr(self, "id2label", None) is None or len(self.id2label) != n:
            self.id2label = {i: f"LABEL_{i}" for i in range(n)}
            self.label2id = {v: k for k, v in self.id2label.items()}

    @property
    def use_return_dict(self):
        return self.return_dict and not self.torchscript

    # -- (de)serialisation -----------------------------------------------------------------------------------
    def to_dict(self):
        out = copy.deepcopy(self.__dict__)
        out["model_type"] = self.model_type
        out["transformers_version"] = "4.4.2"
        return out

    def to_diff_dict(self):
        """Model fields plus the generic fields that differ from their defaults (what 4.4.2 writes to disk)."""
        default = PretrainedConfig().to_dict()
        own = self.to_dict()
        return {k: v for k, v in own.items()
                if k not in default or v != default[k] or k in ("model_type", "transformers_version")}

    def to_json_string(self, use_diff=True):
        d = self.to_diff_dict() if use_diff else self.to_dict()
        return json.dumps(d, indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path, use_diff=True):
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_json_string(use_diff=use_diff))
        os.replace(tmp, path)

    def save_pretrained(self, save_directory):
        target = os.path.join(save_directory, CONFIG_NAME)
        if os.path.isfile(save_directory):  # AssertionError, as 4.4.2 raises here
            raise AssertionError(f"cannot write {CONFIG_NAME} into {save_directory}: that is a file, not a folder")
        os.makedirs(save_directory, exist_ok=True)
        self.to_json_file(target)
        logger.info(f"config written to {target}")

    def update(self, values):
        for k, v in values.items():
            setattr(self, k, v)

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        return_unused_kwargs = kwargs.pop("return_unused_kwargs", False)
        config = cls(**config_dict)
        unused = {}
        for key, value in kwargs.items():
            if key == "num_labels":
                config.num_labels = value
            elif key == "id2label":
                config.id2label = {int(k): v for k, v in value.items()}
                if "label2id" not in kwargs:
                    config.label2id = {v: k for k, v in config.id2label.items()}
            elif hasattr(config, key) or key in _CONFIG_OVERRIDES:
                setattr(config, key, value)
            else:
                unused[key] = value
        return (config, unused) if return_unused_kwargs else config

    @classmethod
    def from_json_file(cls, path):
        return cls(**cls._read_json(path))

    @staticmethod
    def _read_json(path):
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except json.JSONDecodeError as e:
            raise OSError(f"{path} is not valid JSON ({e}): point to a config.json written by save_pretrained") from None
        if not isinstance(d, dict):
            raise OSError(f"{path} does not hold a JSON object: point to a config.json written by save_pretrained")
        return d

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs):
        hub = {k: kwargs.pop(k) for k in _HUB_KWARGS if k in kwargs}
        path = str(pretrained_model_name_or_path)
        if os.path.isfile(path):
            config_file = path
        else:
            config_file = resolve_file(path, CONFIG_NAME, **hub)
            if config_file is None:
                raise OSError(f"{path} has no {CONFIG_NAME}: pass a folder written by save_pretrained or a model id")
        return cls._read_json(config_file), kwargs

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        config_dict, kwargs = cls.get_config_dict(pretrained_model_name_or_path, **kwargs)
        found = config_dict.get("model_type", cls.model_type)
        if cls.model_type and found != cls.model_type:
            logger.warning(f"{pretrained_model_name_or_path} describes a '{found}' model but {cls.__name__} is for "
                           f"'{cls.model_type}': its fields are read as they are; AutoConfig picks the right class")
        return cls.from_dict(config_dict, **kwargs)

    def __eq__(self, other):
        return isinstance(other, PretrainedConfig) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"{self.__class__.__name__} {self.to_json_string(use_diff=False)}"


# Keyword arguments that from_pretrained always puts on the config, even when config.json lacks them: the fork's
# flags and the usual per-run overrides (run_glue passes these to AutoConfig.from_pretrained).
_CONFIG_OVERRIDES = {
    "apply_lora", "lora_r", "lora_alpha", "lora_dropout", "apply_adapter", "adapter_type", "adapter_size",
    "apply_bitfit", "cls_dropout", "reg_loss_wgt", "masking_prob", "finetuning_task", "id2label", "label2id",
    "output_hidden_states", "output_attentions", "return_dict", "hidden_dropout_prob",
    "attention_probs_dropout_prob", "gradient_checkpointing",
}
