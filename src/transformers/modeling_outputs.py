"""Model outputs: dataclasses that also behave like tuples (index 0 is the loss when there is one)."""
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Optional, Tuple

import torch


class ModelOutput(OrderedDict):
    """Fields set to None are left out, so `out[0]` is the first field that was set (the loss when labels were given).
    Like a dict, iterating yields field names; `to_tuple()` gives the values.

    Attributes and items are one store: `out["logits"] = t` also sets `out.logits`, and assigning a non-None value
    to an attribute that is already an item updates the item. (An attribute that was None at construction stays
    out of the items, as in 4.4.2.)"""

    def __post_init__(self):
        # the dataclass __init__ only set attributes; the non-None ones become items, in field order
        for f in fields(self):
            self._mirror(f.name)

    def _mirror(self, name):
        value = self.__dict__.get(name)
        if value is not None:
            OrderedDict.__setitem__(self, name, value)

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        if name in self:
            self._mirror(name)

    def __setitem__(self, key, value):
        OrderedDict.__setitem__(self, key, value)
        object.__setattr__(self, key, value)

    def __getitem__(self, key):
        return OrderedDict.__getitem__(self, key) if isinstance(key, str) else self.to_tuple()[key]

    def to_tuple(self):
        return tuple(self.values())

    def _refuse(self, *args, **kwargs):
        raise Exception(f"{type(self).__name__} has fixed fields: set them as items or attributes instead")

    # as in 4.4.2, the dict methods that would add or drop fields wholesale are refused
    __delitem__ = setdefault = pop = update = _refuse


@dataclass
class BaseModelOutput(ModelOutput):
    last_hidden_state: torch.FloatTensor = None
    hidden_states: Optional[Tuple[torch.FloatTensor]] = None
    attentions: Optional[Tuple[torch.FloatTensor]] = None


@dataclass
class BaseModelOutputWithPooling(ModelOutput):
    last_hidden_state: torch.FloatTensor = None
    pooler_output: torch.FloatTensor = None
    hidden_states: Optional[Tuple[torch.FloatTensor]] = None
    attentions: Optional[Tuple[torch.FloatTensor]] = None


@dataclass
class SequenceClassifierOutput(ModelOutput):
    loss: Optional[torch.FloatTensor] = None
    logits: torch.FloatTensor = None
    hidden_states: Optional[Tuple[torch.FloatTensor]] = None
    attentions: Optional[Tuple[torch.FloatTensor]] = None
