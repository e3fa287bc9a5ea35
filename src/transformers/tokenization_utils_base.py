"""PreTrainedTokenizerBase: the model-independent half of every tokenizer.

A concrete tokenizer implements `_encode_batch` (text or text pairs -> ids with special tokens, truncated) and the
vocabulary methods; this class turns that into the familiar `tokenizer(texts, padding=..., truncation=...,
max_length=..., return_tensors=...)`, `pad()`, `encode`/`decode` and `save_pretrained`/`from_pretrained`.
"""
import json
import os
from collections import UserDict

import numpy as np
import torch

from .file_utils import resolve_file
from .utils import logging

logger = logging.get_logger(__name__)

VERY_LARGE_INTEGER = int(1e30)  # model_max_length when nothing says otherwise, as in 4.4.2
SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
TOKENIZER_FILE = "tokenizer.json"
_HUB_KWARGS = ("cache_dir", "revision", "use_auth_token", "local_files_only", "force_download", "proxies",
               "resume_download", "mirror")


class BatchEncoding(UserDict):
    """A dict of model inputs (input_ids, attention_mask, ...) with attribute access and `.to(device)`."""

    def __init__(self, data=None, tensor_type=None):
        super().__init__(data or {})
        if tensor_type is not None:
            self.convert_to_tensors(tensor_type)

    def __getattr__(self, name):
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getstate__(self):
        return {"data": self.data}

    def __setstate__(self, state):
        self.data = state["data"]

    def convert_to_tensors(self, tensor_type):
        for key, value in self.data.items():
            if tensor_type == "pt" and not torch.is_tensor(value):
                self.data[key] = torch.tensor(value)
            elif tensor_type == "np":
                self.data[key] = np.asarray(value)
            elif tensor_type not in ("pt", "np"):
                raise ValueError(f"return_tensors='{tensor_type}' is not supported: use 'pt' or 'np'")
        return self

    def to(self, device):
        self.data = {k: v.to(device) if torch.is_tensor(v) else v for k, v in self.data.items()}
        return self


def _padding_strategy(padding, max_length):
    if padding is False or padding is None or padding == "do_not_pad":
        return None
    if padding is True or padding == "longest":
        return "longest"
    if padding == "max_length":
        return "max_length"
    raise ValueError(f"padding={padding!r} is not valid: use True/'longest', 'max_length' or False")


def _truncation_strategy(truncation):
    if truncation is False or truncation is None or truncation == "do_not_truncate":
        return None
    if truncation is True:
        return "longest_first"
    if truncation in ("longest_first", "only_first", "only_second"):
        return truncation
    raise ValueError(f"truncation={truncation!r} is not valid: use True/'longest_first', 'only_first', "
                     "'only_second' or False")


class PreTrainedTokenizerBase:
    vocab_files_names = {}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    padding_side = "right"
    max_model_input_sizes = {}

    def __init__(self, model_max_length=None, padding_side=None, model_input_names=None, name_or_path="",
                 **kwargs):
        self.model_max_length = model_max_length if model_max_length is not None else VERY_LARGE_INTEGER
        self.padding_side = padding_side or self.padding_side
        if self.padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {self.padding_side!r}")
        self.model_input_names = list(model_input_names or self.model_input_names)
        self.name_or_path = name_or_path
        for name in SPECIAL_TOKENS:
            value = kwargs.pop(name, None)
            setattr(self, "_" + name, value.get("content") if isinstance(value, dict) else value)
        self.init_kwargs = dict(kwargs)

    # -- special tokens -----------------------------------------------------------------------------------------
    def __getattr__(self, name):
        # bos_token / pad_token_id / ... : token strings stored privately, ids looked up in the vocabulary.
        if name.endswith("_token_id") and name[:-3] in SPECIAL_TOKENS:
            token = self.__dict__.get("_" + name[:-3])
            return None if token is None else self.convert_tokens_to_ids(token)
        if name in SPECIAL_TOKENS:
            return self.__dict__.get("_" + name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name}")

    def __setattr__(self, name, value):
        if name in SPECIAL_TOKENS:
            name = "_" + name
        super().__setattr__(name, value)

    @property
    def special_tokens_map(self):
        return {n: getattr(self, n) for n in SPECIAL_TOKENS if getattr(self, n) is not None}

    @property
    def all_special_tokens(self):
        return list(dict.fromkeys(self.special_tokens_map.values()))

    @property
    def all_special_ids(self):
        return self.convert_tokens_to_ids(self.all_special_tokens)

    @property
    def pad_token_type_id(self):
        return 0

    # -- to be provided by a concrete tokenizer --------------------------------------------------------------
    def _encode_batch(self, texts, pairs, add_special_tokens, truncation, max_length, is_split_into_words):
        """-> list of dicts with input_ids, token_type_ids, special_tokens_mask (and offset_mapping if known)."""
        raise NotImplementedError

    def convert_tokens_to_ids(self, tokens):
        raise NotImplementedError

    def convert_ids_to_tokens(self, ids, skip_special_tokens=False):
        raise NotImplementedError

    def save_vocabulary(self, save_directory, filename_prefix=None):
        raise NotImplementedError

    # -- encoding -----------------------------------------------------------------------------------------------
    def __call__(self, text, text_pair=None, add_special_tokens=True, padding=False, truncation=False,
                 max_length=None, stride=0, is_split_into_words=False, pad_to_multiple_of=None,
                 return_tensors=None, return_token_type_ids=None, return_attention_mask=None,
                 return_overflowing_tokens=False, return_special_tokens_mask=False, return_offsets_mapping=False,
                 return_length=False, verbose=True, **kwargs):
        if kwargs:
            raise TypeError(f"unexpected tokenizer argument(s) {sorted(kwargs)}")
        if stride or return_overflowing_tokens:
            raise NotImplementedError("overflowing tokens / stride are not supported by this toolkit's tokenizers")
        batched = isinstance(text, (list, tuple)) and (not is_split_into_words or
                                                        (len(text) > 0 and isinstance(text[0], (list, tuple))))
        texts = list(text) if batched else [text]
        pairs = None
        if text_pair is not None and (batched or len(text_pair) > 0):  # 4.4.2: tok(a, "") encodes `a` alone
            pairs = list(text_pair) if batched else [text_pair]
            if len(pairs) != len(texts):
                raise ValueError(f"got {len(texts)} texts but {len(pairs)} text pairs: pass lists of equal length")
        for t in texts + (pairs or []):
            if not isinstance(t, (str, list, tuple)):
                raise ValueError(f"text input must be str or a list of str, got {type(t).__name__}")

        trunc = _truncation_strategy(truncation)
        pad = _padding_strategy(padding, max_length)
        if max_length is None and (trunc or pad == "max_length"):
            if self.model_max_length >= VERY_LARGE_INTEGER:
                trunc, pad = trunc, (pad if pad != "max_length" else "longest")
            else:
                max_length = self.model_max_length
        if trunc is None and max_length is not None and pad != "max_length" and verbose:
            logger.warning("max_length is given without truncation: sequences are not truncated; "
                           "pass truncation=True to cut them to max_length")
        encoded = self._encode_batch(texts, pairs, add_special_tokens, trunc, max_length if trunc else None,
                                     is_split_into_words)

        want_types = ("token_type_ids" in self.model_input_names) if return_token_type_ids is None \
            else return_token_type_ids
        want_mask = ("attention_mask" in self.model_input_names) if return_attention_mask is None \
            else return_attention_mask
        rows = []
        for enc in encoded:
            row = {"input_ids": enc["input_ids"]}
            if want_types:
                row["token_type_ids"] = enc["token_type_ids"]
            if want_mask:
                row["attention_mask"] = [1] * len(enc["input_ids"])
            if return_special_tokens_mask:
                row["special_tokens_mask"] = enc["special_tokens_mask"]
            if return_offsets_mapping:
                if "offset_mapping" not in enc:
                    raise NotImplementedError("return_offsets_mapping needs a fast tokenizer")
                row["offset_mapping"] = enc["offset_mapping"]
            if return_length:
                row["length"] = len(enc["input_ids"])
            rows.append(row)
        if pad:
            rows = [self._pad_one(r, self._target_length(rows, pad, max_length, pad_to_multiple_of), want_mask)
                    for r in rows]
        elif pad_to_multiple_of is not None:
            rows = [self._pad_one(r, self._target_length([r], "longest", None, pad_to_multiple_of), want_mask)
                    for r in rows]
        if batched:
            data = {k: [r[k] for r in rows] for k in rows[0]} if rows else {}
        else:
            data = rows[0]
        if return_tensors is not None and batched and pad is None and len({len(r["input_ids"]) for r in rows}) > 1:
            raise ValueError("sequences have different lengths and cannot become one tensor: pass padding=True")
        return BatchEncoding(data, tensor_type=return_tensors)

    def encode(self, text, text_pair=None, add_special_tokens=True, **kwargs):
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    def encode_plus(self, text, text_pair=None, **kwargs):
        return self(text, text_pair, **kwargs)

    def batch_encode_plus(self, batch_text_or_text_pairs, **kwargs):
        items = list(batch_text_or_text_pairs)
        if items and isinstance(items[0], (list, tuple)) and not kwargs.get("is_split_into_words"):
            return self([a for a, _ in items], [b for _, b in items], **kwargs)
        return self(items, **kwargs)

    def tokenize(self, text, pair=None, add_special_tokens=False, **kwargs):
        ids = self(text, pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]
        return self.convert_ids_to_tokens(ids)

    def num_special_tokens_to_add(self, pair=False):
        return len(self("a", "a" if pair else None)["input_ids"]) - len(self("a", "a" if pair else None,
                                                                             add_special_tokens=False)["input_ids"])

    def decode(self, token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=True, **kwargs):
        raise NotImplementedError

    def batch_decode(self, sequences, **kwargs):
        return [self.decode(s, **kwargs) for s in sequences]

    # -- padding ------------------------------------------------------------------------------------------------
    def _target_length(self, rows, strategy, max_length, pad_to_multiple_of):
        if strategy == "max_length":
            if max_length is None:
                raise ValueError("padding='max_length' needs max_length (or a tokenizer with model_max_length)")
            target = max_length
        else:
            target = max((len(r["input_ids"]) for r in rows), default=0)
        if pad_to_multiple_of:
            target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
        return target

    def _pad_one(self, row, target, want_mask=True):
        missing = target - len(row["input_ids"])
        if want_mask and "attention_mask" not in row:
            row["attention_mask"] = [1] * len(row["input_ids"])
        if missing <= 0:
            return row
        if self.pad_token_id is None:
            raise ValueError("the tokenizer has no pad_token: set tokenizer.pad_token before padding")
        fill = {"input_ids": self.pad_token_id, "token_type_ids": self.pad_token_type_id, "attention_mask": 0,
                "special_tokens_mask": 1, "offset_mapping": (0, 0)}
        out = dict(row)
        for key, value in fill.items():
            if key in row:
                seq = list(row[key])
                out[key] = seq + [value] * missing if self.padding_side == "right" else [value] * missing + seq
        return out

    def pad(self, encoded_inputs, padding=True, max_length=None, pad_to_multiple_of=None, return_attention_mask=None,
            return_tensors=None, verbose=True):
        """Pad a list of encodings (dicts) or a dict of lists to a common length; other keys (labels) pass through."""
        if isinstance(encoded_inputs, (dict, UserDict)):
            first = encoded_inputs["input_ids"]
            if len(first) == 0 or not isinstance(first[0], (list, tuple)) and not torch.is_tensor(first[0]):
                rows = [dict(encoded_inputs)]
                single = True
            else:
                rows = [{k: v[i] for k, v in encoded_inputs.items()} for i in range(len(first))]
                single = False
        else:
            rows, single = [dict(r) for r in encoded_inputs], False
        if not rows:
            return BatchEncoding({}, tensor_type=return_tensors)
        rows = [{k: (v.tolist() if torch.is_tensor(v) or isinstance(v, np.ndarray) else v) for k, v in r.items()}
                for r in rows]
        want_mask = ("attention_mask" in self.model_input_names) if return_attention_mask is None \
            else return_attention_mask
        strategy = _padding_strategy(padding, max_length)
        if strategy:
            target = self._target_length(rows, strategy, max_length, pad_to_multiple_of)
            rows = [self._pad_one(r, target, want_mask) for r in rows]
        if not want_mask:
            for r in rows:
                r.pop("attention_mask", None)
        data = rows[0] if single else {k: [r[k] for r in rows] for k in rows[0]}
        return BatchEncoding(data, tensor_type=return_tensors)

    # -- persistence --------------------------------------------------------------------------------------------
    def _config_to_save(self):
        cfg = {k: v for k, v in self.init_kwargs.items() if not k.endswith("_file") and k != "name_or_path"}
        cfg.update(self.special_tokens_map)
        cfg["model_max_length"] = self.model_max_length
        cfg["padding_side"] = self.padding_side
        cfg["tokenizer_class"] = type(self).__name__
        return cfg

    def save_pretrained(self, save_directory, legacy_format=None, filename_prefix=None):
        if os.path.isfile(save_directory):
            raise ValueError(f"{save_directory} is a file: save_pretrained needs a directory")
        os.makedirs(save_directory, exist_ok=True)
        files = []
        for name, content in ((TOKENIZER_CONFIG_FILE, self._config_to_save()),
                              (SPECIAL_TOKENS_MAP_FILE, self.special_tokens_map)):
            path = os.path.join(save_directory, name)
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                json.dump(content, f, indent=2, ensure_ascii=False, sort_keys=True)
            os.replace(path + ".tmp", path)
            files.append(path)
        return tuple(files) + tuple(self.save_vocabulary(save_directory, filename_prefix))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *inputs, **kwargs):
        """Load from a folder (or hub id) holding the vocabulary files, tokenizer_config.json and
        special_tokens_map.json; keyword arguments override what those files say."""
        hub = {k: kwargs.pop(k) for k in _HUB_KWARGS if k in kwargs}
        path = str(pretrained_model_name_or_path)
        wanted = dict(cls.vocab_files_names)
        wanted.setdefault("tokenizer_file", TOKENIZER_FILE)
        if os.path.isfile(path):  # a single vocabulary file, as 4.4.2 allowed for one-file tokenizers
            if len(cls.vocab_files_names) != 1:
                raise ValueError(f"{path} is a file but {cls.__name__} needs a folder with "
                                 f"{sorted(cls.vocab_files_names.values())}")
            files = {next(iter(cls.vocab_files_names)): path}
            config = {}
        else:
            files = {key: resolve_file(path, name, **hub) for key, name in wanted.items()}
            config = {}
            for extra in (SPECIAL_TOKENS_MAP_FILE, TOKENIZER_CONFIG_FILE):  # the config wins over the map
                found = resolve_file(path, extra, **hub)
                if found:
                    with open(found, encoding="utf-8") as f:
                        config.update({k: v for k, v in json.load(f).items() if v is not None})
        config.pop("tokenizer_class", None)
        config.pop("name_or_path", None)
        for key in list(config):
            if key.endswith("_file") or key in ("auto_map", "added_tokens_decoder"):
                config.pop(key)
        if "model_max_length" not in config and "model_max_length" not in kwargs:
            name = os.path.basename(path.rstrip("/"))
            if name in cls.max_model_input_sizes:
                config["model_max_length"] = cls.max_model_input_sizes[name]
        if all(v is None for v in files.values()):
            raise OSError(f"{path} holds none of {sorted(wanted.values())}: pass a folder written by "
                          f"save_pretrained or one with the tokenizer's vocabulary files")
        config.update(kwargs)
        return cls(*inputs, **{k: v for k, v in files.items() if v is not None}, name_or_path=path, **config)

    def __repr__(self):
        return (f"{type(self).__name__}(name_or_path='{self.name_or_path}', vocab_size={len(self)}, "
                f"model_max_len={self.model_max_length}, padding_side='{self.padding_side}', "
                f"special_tokens={self.special_tokens_map})")
