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
