"""PreTrainedTokenizerBase: the model-independent half of every tokenizer.

A concrete tokenizer implements `_encode_batch` (text or text pairs -> ids with special tokens, truncated) and the
vocabulary methods; this class turns that into the familiar `tokenizer(texts, padding=..., truncation=...,
max_length=..., return_tensors=...)`, `pad()`, `encode`/`decode` and `save_pretrained`/`from_pretrained`.
"""
import inspect
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
    """A dict of model inputs (input_ids, attention_mask, ...) with attribute access and `.to(device)`; from a fast
    tokenizer it also keeps the `tokenizers.Encoding` of each row (`encodings`, `sequence_ids(i)`, `tokens(i)`,
    `word_ids(i)`)."""

    def __init__(self, data=None, tensor_type=None, encoding=None, prepend_batch_axis=False):
        super().__init__(data or {})
        self._encodings = encoding
        if tensor_type is not None:
            self.convert_to_tensors(tensor_type, prepend_batch_axis=prepend_batch_axis)

    @property
    def encodings(self):
        return self.__dict__.get("_encodings")

    @property
    def is_fast(self):
        return self.encodings is not None

    def _encoding(self, batch_index, what):
        if not self.encodings:
            raise ValueError(f"{what}() needs an encoding from a fast tokenizer (PreTrainedTokenizerFast)")
        return self.encodings[batch_index]

    def sequence_ids(self, batch_index=0):
        """Per token: 0 (first sequence), 1 (second) or None (special token)."""
        return self._encoding(batch_index, "sequence_ids").sequence_ids

    def tokens(self, batch_index=0):
        return self._encoding(batch_index, "tokens").tokens

    def word_ids(self, batch_index=0):
        return self._encoding(batch_index, "word_ids").word_ids

    def __getitem__(self, item):
        if isinstance(item, int):
            return self._encoding(item, "indexing by int")
        return self.data[item]

    def __getattr__(self, name):
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getstate__(self):
        return {"data": self.data, "encodings": self.encodings}

    def __setstate__(self, state):
        self.data = state["data"]
        self._encodings = state.get("encodings")

    def convert_to_tensors(self, tensor_type, prepend_batch_axis=False):
        for key, value in self.data.items():
            if prepend_batch_axis:
                value = [value]
            if tensor_type == "pt" and not torch.is_tensor(value):
                try:
                    self.data[key] = torch.tensor(value)
                except ValueError:
                    raise ValueError(f"'{key}' cannot become a tensor (rows of different lengths?): pass "
                                     "padding=True or truncation=True") from None
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
    pretrained_vocab_files_map = {}
    pretrained_init_configuration = {}
    init_inputs = ()
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    padding_side = "right"
    max_model_input_sizes = {}
    SPECIAL_TOKENS_ATTRIBUTES = list(SPECIAL_TOKENS) + ["additional_special_tokens"]

    def __new__(cls, *args, **kwargs):
        # 4.4.2 kept every constructor argument, defaults included, in init_kwargs: bind them here, before the
        # subclasses' __init__ chain consumes them.
        self = super().__new__(cls)
        full = {}
        try:
            signature = inspect.signature(cls.__init__)
            bound = signature.bind(None, *args, **kwargs)
            bound.apply_defaults()
            for name, param in signature.parameters.items():
                if name == "self" or name not in bound.arguments:
                    continue
                if param.kind is inspect.Parameter.VAR_KEYWORD:
                    full.update(bound.arguments[name])
                elif param.kind is not inspect.Parameter.VAR_POSITIONAL:
                    full[name] = bound.arguments[name]
        except TypeError:  # unpickling, or arguments the constructor itself will reject
            full = {}
        object.__setattr__(self, "_signature_kwargs", full)
        return self

    def __init__(self, model_max_length=None, padding_side=None, model_input_names=None, name_or_path="",
                 **kwargs):
        self.model_max_length = model_max_length if model_max_length is not None else VERY_LARGE_INTEGER
        self.padding_side = padding_side or self.padding_side
        if self.padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {self.padding_side!r}")
        self.model_input_names = list(model_input_names or self.model_input_names)
        self.name_or_path = name_or_path
        for name in SPECIAL_TOKENS:
            setattr(self, "_" + name, _token_str(kwargs.pop(name, None)))
        self._additional_special_tokens = [_token_str(t) for t in kwargs.pop("additional_special_tokens", None) or []]
        self.deprecation_warnings = {}
        self._config_kwargs = dict(kwargs)  # what tokenizer_config.json records
        self.init_kwargs = {**self.__dict__.get("_signature_kwargs", {}), **kwargs}

    # -- special tokens -----------------------------------------------------------------------------------------
    def __getattr__(self, name):
        # bos_token / pad_token_id / ... : token strings stored privately, ids looked up in the vocabulary.
        if name.endswith("_token_id") and name[:-3] in SPECIAL_TOKENS:
            token = self.__dict__.get("_" + name[:-3])
            return None if token is None else self.convert_tokens_to_ids(token)
        if name in SPECIAL_TOKENS:
            return self.__dict__.get("_" + name)
        if name == "additional_special_tokens":
            return self.__dict__.get("_additional_special_tokens", [])
        if name == "additional_special_tokens_ids":
            return self.convert_tokens_to_ids(self.additional_special_tokens)
        raise AttributeError(f"{type(self).__name__} has no attribute {name}")

    def __setattr__(self, name, value):
        if name in SPECIAL_TOKENS:
            name, value = "_" + name, _token_str(value)
        elif name == "additional_special_tokens":
            name, value = "_additional_special_tokens", [_token_str(t) for t in value or []]
        super().__setattr__(name, value)

    @property
    def special_tokens_map(self):
        found = {n: getattr(self, n) for n in SPECIAL_TOKENS if getattr(self, n) is not None}
        if self.additional_special_tokens:
            found["additional_special_tokens"] = list(self.additional_special_tokens)
        return found

    @property
    def special_tokens_map_extended(self):
        return self.special_tokens_map

    @property
    def all_special_tokens(self):
        tokens = []
        for value in self.special_tokens_map.values():
            tokens += value if isinstance(value, list) else [value]
        return list(dict.fromkeys(tokens))

    @property
    def all_special_tokens_extended(self):
        return self.all_special_tokens

    @property
    def max_len_single_sentence(self):
        return self.model_max_length - self.num_special_tokens_to_add(pair=False)

    @property
    def max_len_sentences_pair(self):
        return self.model_max_length - self.num_special_tokens_to_add(pair=True)

    # -- adding tokens ------------------------------------------------------------------------------------------
    def add_tokens(self, new_tokens, special_tokens=False):
        """Add tokens (str or AddedToken) that are never split; -> how many were new to the vocabulary."""
        if not new_tokens:
            return 0
        if not isinstance(new_tokens, (list, tuple)):
            new_tokens = [new_tokens]
        return self._add_tokens(list(new_tokens), special_tokens=special_tokens)

    def _add_tokens(self, new_tokens, special_tokens=False):
        raise NotImplementedError

    def add_special_tokens(self, special_tokens_dict):
        """Set special tokens ({'pad_token': '<pad>', 'additional_special_tokens': [...]}) and add those new to
        the vocabulary; -> how many were added."""
        added = 0
        for key, value in special_tokens_dict.items():
            if key not in self.SPECIAL_TOKENS_ATTRIBUTES:
                raise ValueError(f"{key!r} is not a special token attribute: use one of "
                                 f"{self.SPECIAL_TOKENS_ATTRIBUTES}")
            setattr(self, key, value)
            added += self.add_tokens(list(value) if key == "additional_special_tokens" else [value],
                                     special_tokens=True)
        return added

    def sanitize_special_tokens(self):
        return self.add_tokens(self.all_special_tokens, special_tokens=True)

    # -- special-token layout: [CLS] A [SEP] (B [SEP]), token types 0 then 1 (RoBERTa overrides) ----------------
    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return cls + list(token_ids_0) + sep
        return cls + list(token_ids_0) + sep + list(token_ids_1) + sep

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None):
        first = [0] * (len(token_ids_0) + 2)
        return first if token_ids_1 is None else first + [1] * (len(token_ids_1) + 1)

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        """1 for a special token, 0 for a sequence token, over the ids the special tokens would be added to (or,
        with already_has_special_tokens, over ids that hold them already)."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("pass one sequence of ids with already_has_special_tokens=True")
            special = set(self.all_special_ids)
            return [1 if t in special else 0 for t in token_ids_0]
        marker = -1  # never a real id: marks where the sequences go
        built = self.build_inputs_with_special_tokens([marker] * len(token_ids_0),
                                                      None if token_ids_1 is None else [marker] * len(token_ids_1))
        return [0 if t == marker else 1 for t in built]

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
        padding, truncation, max_length = self._legacy_padding(padding, truncation, max_length, kwargs)
        if return_overflowing_tokens and not self.is_fast:
            raise NotImplementedError("return_overflowing_tokens needs a fast tokenizer here")
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
        self._check_multiple(trunc, pad, max_length, pad_to_multiple_of)
        self._stride = stride if return_overflowing_tokens else 0
        encoded = self._encode_batch(texts, pairs, add_special_tokens, trunc, max_length if trunc else None,
                                     is_split_into_words)
        if return_overflowing_tokens:  # each overflowing window becomes a row of its own, as in 4.4.2's fast path
            rows_out, mapping = [], []
            for i, enc in enumerate(encoded):
                for part in [enc] + enc.get("overflowing", []):
                    rows_out.append(part)
                    mapping.append(i)
            encoded = rows_out
        if not trunc and verbose:
            for enc in encoded:
                self._warn_if_too_long(len(enc["input_ids"]))

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
        if return_overflowing_tokens:
            batched = True
            for r, i in zip(rows, mapping):
                r["overflow_to_sample_mapping"] = i
        if batched:
            data = {k: [r[k] for r in rows] for k in rows[0]} if rows else {}
        else:
            data = rows[0]
        if return_tensors is not None and batched and pad is None and len({len(r["input_ids"]) for r in rows}) > 1:
            raise ValueError("sequences have different lengths and cannot become one tensor: pass padding=True")
        encodings = [enc["encoding"] for enc in encoded if "encoding" in enc]
        return BatchEncoding(data, tensor_type=return_tensors,
                             encoding=encodings if len(encodings) == len(encoded) and encodings else None)

    def encode(self, text, text_pair=None, add_special_tokens=True, **kwargs):
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    def encode_plus(self, text, text_pair=None, **kwargs):
        return self(text, text_pair, **kwargs)

    def batch_encode_plus(self, batch_text_or_text_pairs, **kwargs):
        items = list(batch_text_or_text_pairs)
        def is_pair(item):
            if not isinstance(item, (list, tuple)) or len(item) != 2:
                return False
            return not kwargs.get("is_split_into_words") or isinstance(item[0], (list, tuple))
        if items and is_pair(items[0]):
            return self([a for a, _ in items], [b for _, b in items], **kwargs)
        return self(items, **kwargs)

    def tokenize(self, text, pair=None, add_special_tokens=False, **kwargs):
        ids = self(text, pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]
        return self.convert_ids_to_tokens(ids)

    def num_special_tokens_to_add(self, pair=False):
        return len(self.build_inputs_with_special_tokens([], [] if pair else None))

    def prepare_for_model(self, ids, pair_ids=None, add_special_tokens=True, padding=False, truncation=False,
                          max_length=None, stride=0, pad_to_multiple_of=None, return_tensors=None,
                          return_token_type_ids=None, return_attention_mask=None, return_overflowing_tokens=False,
                          return_special_tokens_mask=False, return_offsets_mapping=False, return_length=False,
                          verbose=True, prepend_batch_axis=False, **kwargs):
        """Ids (and pair ids) -> model inputs: truncated, special tokens added, padded, as one BatchEncoding."""
        padding, truncation, max_length = self._legacy_padding(padding, truncation, max_length, kwargs)
        if return_offsets_mapping:
            raise NotImplementedError("return_offset_mapping needs text and a fast tokenizer: call the tokenizer")
        trunc = _truncation_strategy(truncation)
        pad = _padding_strategy(padding, max_length)
        if max_length is None and (trunc or pad == "max_length") and self.model_max_length < VERY_LARGE_INTEGER:
            max_length = self.model_max_length
        ids, pair_ids = list(ids), None if pair_ids is None else list(pair_ids)
        row = {}
        if trunc and max_length is not None:
            budget = max_length - (self.num_special_tokens_to_add(pair_ids is not None) if add_special_tokens else 0)
            ids, pair_ids, overflow = truncate_sequences(ids, pair_ids, budget, trunc, stride)
            if return_overflowing_tokens:
                row["overflowing_tokens"] = overflow
                row["num_truncated_tokens"] = max(0, len(overflow) - stride)
        if add_special_tokens:
            input_ids = self.build_inputs_with_special_tokens(ids, pair_ids)
            types = self.create_token_type_ids_from_sequences(ids, pair_ids)
        else:
            input_ids = ids + (pair_ids or [])
            types = [0] * len(ids) + [1] * len(pair_ids or [])
        row["input_ids"] = input_ids
        if return_token_type_ids if return_token_type_ids is not None else "token_type_ids" in self.model_input_names:
            row["token_type_ids"] = types
        if return_special_tokens_mask:
            row["special_tokens_mask"] = (self.get_special_tokens_mask(ids, pair_ids) if add_special_tokens
                                          else [0] * len(input_ids))
        want_mask = ("attention_mask" in self.model_input_names) if return_attention_mask is None \
            else return_attention_mask
        if want_mask:
            row["attention_mask"] = [1] * len(input_ids)
        if not trunc and verbose:
            self._warn_if_too_long(len(input_ids))
        if pad:
            self._check_multiple(trunc, pad, max_length, pad_to_multiple_of)
            row = self._pad_one(row, self._target_length([row], pad, max_length, pad_to_multiple_of), want_mask)
        if return_length:
            row["length"] = len(row["input_ids"])
        return BatchEncoding(row, tensor_type=return_tensors, prepend_batch_axis=prepend_batch_axis)

    def _warn_if_too_long(self, length):
        if length > self.model_max_length and not self.deprecation_warnings.get("sequence-length-is-longer"):
            # the first words are the ones 4.4.2 logged (its tests look for them); the rest says what to do
            logger.warning(f"Token indices sequence length is longer than the specified maximum sequence length "
                           f"for this model ({length} > {self.model_max_length}): the model has no positions past "
                           "its maximum, so truncate (truncation=True, max_length) before feeding it")
            self.deprecation_warnings["sequence-length-is-longer"] = True

    @staticmethod
    def _check_multiple(trunc, pad, max_length, pad_to_multiple_of):
        if trunc and pad and pad_to_multiple_of and max_length is not None and max_length % pad_to_multiple_of:
            raise ValueError(f"truncation and padding to max_length={max_length}, which is not a multiple of "
                             f"pad_to_multiple_of={pad_to_multiple_of}: pick a max_length that is")

    def _legacy_padding(self, padding, truncation, max_length, kwargs):
        """4.4.2's deprecated pad_to_max_length=True (padding='max_length') and truncation_strategy=..."""
        if kwargs.pop("pad_to_max_length", False) and padding is False:
            padding = "max_length" if max_length is not None or self.model_max_length < VERY_LARGE_INTEGER \
                else "longest"
        if "truncation_strategy" in kwargs:
            strategy = kwargs.pop("truncation_strategy")
            if truncation is False and strategy not in (None, "do_not_truncate"):
                truncation = strategy
        for key in ("return_lengths", "add_prefix_space"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"unexpected tokenizer argument(s) {sorted(kwargs)}")
        return padding, truncation, max_length

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
        cfg = {k: v for k, v in self._config_kwargs.items() if not k.endswith("_file") and k != "name_or_path"}
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


def _token_str(value):
    """A special token as its string (from an AddedToken or its dict form)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("content")
    return getattr(value, "content", str(value))


def truncate_sequences(first, second, budget, strategy, stride=0):
    """Cut token lists from the end so that len(first) + len(second) <= budget, as 4.4.2 does: longest_first takes
    one token at a time from the longer (the second on ties); only_first / only_second from that one.
    -> (first, second, overflow): overflow holds the cut tokens of the cut sequence with `stride` tokens before."""
    excess = len(first) + len(second or []) - budget
    if excess <= 0:
        return first, second, []
    if strategy == "longest_first":
        rest = list(second or [])
        cut_first = cut_second = 0
        for _ in range(excess):
            if len(first) - cut_first > len(rest) - cut_second:
                cut_first += 1
            elif len(rest) - cut_second > 0:
                cut_second += 1
            else:
                raise ValueError(f"cannot truncate to {budget} tokens: max_length leaves no room for the text; "
                                 "use a larger max_length")
        overflow = first[max(0, len(first) - cut_first - stride):] if cut_first else []
        first = first[:len(first) - cut_first]
        if second is not None:
            second = rest[:len(rest) - cut_second]
        return first, second, overflow
    target = "first" if strategy == "only_first" or second is None else "second"
    seq = first if target == "first" else second
    if excess > len(seq):
        raise ValueError(f"cannot truncate with {strategy!r}: the {target} sequence has {len(seq)} tokens but "
                         f"{excess} must go; use truncation='longest_first' or a larger max_length")
    overflow = seq[max(0, len(seq) - excess - stride):]
    seq = seq[:len(seq) - excess]
    return (seq, second, overflow) if target == "first" else (first, seq, overflow)
