"""Batch builders for the DataLoader: a list of per-example feature dicts -> one dict of tensors.

Labels always come out under `labels`, the keyword models take, whatever the dataset called them
(`label` for one value per example, `label_ids` for one per token).
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Union

import torch

DataCollator = Callable[[List[Any]], Dict[str, Any]]
_LABEL_KEYS = ("label", "label_ids")


def _as_dict(feature) -> Dict[str, Any]:
    return feature if isinstance(feature, dict) else vars(feature)


def _stack(values: List[Any], dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    if isinstance(values[0], torch.Tensor):
        return torch.stack(values) if dtype is None else torch.stack(values).to(dtype)
    return torch.tensor(values, dtype=dtype)


def _label_dtype(value) -> torch.dtype:
    """int-like labels (classification) -> long; float labels (regression) -> float32."""
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    if isinstance(value, torch.Tensor):
        value = value.flatten()[0].item()
    return torch.long if isinstance(value, int) and not isinstance(value, bool) else torch.float


def default_data_collator(features: List[Any]) -> Dict[str, torch.Tensor]:
    """Stack already-padded features into tensors; non-tensorisable fields (None, strings) are left out."""
    features = [_as_dict(f) for f in features]
    first = features[0]
    batch = {}
    for key in _LABEL_KEYS:
        if first.get(key) is not None:
            batch["labels"] = _stack([f[key] for f in features], _label_dtype(first[key]))
            break
    for key, value in first.items():
        if key in _LABEL_KEYS or value is None or isinstance(value, str):
            continue
        batch[key] = _stack([f[key] for f in features])
    return batch


@dataclass
class DataCollatorWithPadding:
    """Pad a list of tokenized examples with `tokenizer.pad` (dynamic padding), returning torch tensors.

    padding: True/'longest' (pad to the longest in the batch), 'max_length' (to `max_length`), False/'do_not_pad'.
    pad_to_multiple_of: round the padded length up to a multiple of this (tensor-core friendly).
    """

    tokenizer: Any
    padding: Union[bool, str] = True
    max_length: Optional[int] = None
    pad_to_multiple_of: Optional[int] = None

    def __call__(self, features: List[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
        batch = self.tokenizer.pad(
            [_as_dict(f) for f in features],
            padding=self.padding,
            max_length=self.max_length,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_tensors="pt",
        )
        batch = dict(batch)
        for key in _LABEL_KEYS:
            if key in batch:
                batch["labels"] = batch.pop(key)
        return batch


def _pad_sequences(examples, tokenizer, pad_to_multiple_of=None) -> torch.Tensor:
    """Lists / tensors of ids -> one tensor, padded with the tokenizer's pad token on its padding side."""
    rows = [torch.as_tensor(e, dtype=torch.long) for e in examples]
    length = max(r.size(0) for r in rows)
    if pad_to_multiple_of:
        length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
    if all(r.size(0) == length for r in rows):
        return torch.stack(rows)
    if tokenizer.pad_token is None:
        raise ValueError(f"the examples have different lengths and {type(tokenizer).__name__} has no pad_token: "
                         "set tokenizer.pad_token to pad them")
    out = rows[0].new_full((len(rows), length), tokenizer.pad_token_id)
    for i, r in enumerate(rows):
        if tokenizer.padding_side == "right":
            out[i, :r.size(0)] = r
        else:
            out[i, length - r.size(0):] = r
    return out


@dataclass
class DataCollatorForTokenClassification:
    """Pads the inputs with `tokenizer.pad` and the per-token `labels` (or `label`) with label_pad_token_id to the
    same length, on the tokenizer's padding side."""

    tokenizer: Any
    padding: Union[bool, str] = True
    max_length: Optional[int] = None
    pad_to_multiple_of: Optional[int] = None
    label_pad_token_id: int = -100

    def __call__(self, features):
        features = [dict(_as_dict(f)) for f in features]
        key = "label" if "label" in features[0] else "labels"
        labels = [f.pop(key) for f in features] if key in features[0] else None
        batch = dict(self.tokenizer.pad(features, padding=self.padding, max_length=self.max_length,
                                        pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt"))
        if labels is not None:
            length = batch["input_ids"].shape[1]
            fill = self.label_pad_token_id
            rows = [list(l) + [fill] * (length - len(l)) if self.tokenizer.padding_side == "right"
                    else [fill] * (length - len(l)) + list(l) for l in labels]
            batch["labels"] = torch.tensor(rows, dtype=torch.long)
        return batch


@dataclass
class DataCollatorForLanguageModeling:
    """Batches for language modelling. mlm=True: `mlm_probability` of the non-special, non-padding tokens become
    prediction targets (80 % replaced by the mask token, 10 % by a random token, 10 % kept), every other label is
    -100. mlm=False (causal LM): labels are the inputs, padding labelled -100."""

    tokenizer: Any
    mlm: bool = True
    mlm_probability: float = 0.15
    pad_to_multiple_of: Optional[int] = None

    def __post_init__(self):
        if self.mlm and self.tokenizer.mask_token is None:
            raise ValueError(f"{type(self.tokenizer).__name__} has no mask_token, which masked language modelling "
                             "needs: pass mlm=False for causal language modelling")

    def __call__(self, examples):
        if isinstance(examples[0], (dict,)) or hasattr(examples[0], "keys"):
            batch = dict(self.tokenizer.pad([dict(e) for e in examples], return_tensors="pt",
                                            pad_to_multiple_of=self.pad_to_multiple_of))
        else:
            batch = {"input_ids": _pad_sequences(examples, self.tokenizer, self.pad_to_multiple_of)}
        special = batch.pop("special_tokens_mask", None)
        if self.mlm:
            batch["input_ids"], batch["labels"] = self.mask_tokens(batch["input_ids"], special)
        else:
            labels = batch["input_ids"].clone()
            if self.tokenizer.pad_token_id is not None:
                labels[labels == self.tokenizer.pad_token_id] = -100
            batch["labels"] = labels
        return batch

    def mask_tokens(self, inputs: torch.Tensor, special_tokens_mask=None):
        """-> (inputs with some tokens masked or replaced, labels: the original id where masked, else -100)."""
        labels = inputs.clone()
        if special_tokens_mask is None:
            special_tokens_mask = [self.tokenizer.get_special_tokens_mask(row, already_has_special_tokens=True)
                                   for row in labels.tolist()]
        special = torch.as_tensor(special_tokens_mask, dtype=torch.bool)
        probability = torch.full(labels.shape, self.mlm_probability).masked_fill(special, 0.0)
        if self.tokenizer.pad_token_id is not None:
            probability.masked_fill_(labels.eq(self.tokenizer.pad_token_id), 0.0)
        masked = torch.bernoulli(probability).bool()
        labels[~masked] = -100
        to_mask = torch.bernoulli(torch.full(labels.shape, 0.8)).bool() & masked
        inputs[to_mask] = self.tokenizer.convert_tokens_to_ids(self.tokenizer.mask_token)
        to_random = torch.bernoulli(torch.full(labels.shape, 0.5)).bool() & masked & ~to_mask
        inputs[to_random] = torch.randint(len(self.tokenizer), labels.shape, dtype=torch.long)[to_random]
        return inputs, labels
