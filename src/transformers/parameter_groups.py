"""Which group a parameter belongs to, read from its name: LoRA, adapter, backbone or head.

The bottom of the LoRA/adapter stack: `lora`, `adapters` and the modules that read and write their files all sort
tensors with these rules, and this module imports nothing from the package.

- the backbone is everything under the model's `base_model_prefix` (`roberta.`, `bert.`, `deberta.`), except the
  modules the model family names in `head_modules_in_backbone` (BERT: `pooler`);
- the head is every other parameter: all of them outside the backbone (`classifier.*`, DeBERTa's `pooler.*`) and
  those backbone-internal head modules (BERT's `bert.pooler.*`, the tanh layer its classifier reads, placed as
  RoBERTa's `classifier.dense` and DeBERTa's `pooler.dense`). The head always trains and is always saved with a
  method's tensors, since a new task needs a new head;
- LoRA tensors have `lora_` in their name (`...query.lora_A`), adapter tensors sit in an `.adapter.` module
  (`...output.adapter.adapter_A.weight`).

A backbone is passed around as what `backbone_of(model)` returns; a bare prefix string ('roberta') also works and
then means a backbone with no head module inside it.
"""
from typing import NamedTuple, Tuple


class Backbone(NamedTuple):
    """Where a model's backbone sits in its parameter names: `prefix` ('bert'; '' for none, and then every
    parameter counts as head) and `head_modules` ('pooler',), its children that belong to the head."""
    prefix: str
    head_modules: Tuple[str, ...] = ()


def backbone_prefix(model):
    """The name the backbone's parameters start with ('roberta'); '' when the model names none."""
    return getattr(model, "base_model_prefix", "") or ""


def backbone_of(model):
    """The model's Backbone: its prefix and the head modules its family keeps inside the backbone (the class
    attribute `head_modules_in_backbone`, e.g. BERT's ("pooler",))."""
    return Backbone(backbone_prefix(model), tuple(getattr(model, "head_modules_in_backbone", ()) or ()))


def _as_backbone(backbone):
    return Backbone(backbone) if isinstance(backbone, str) else backbone


def under(name, module):
    """Is `name` the module `module` itself or inside it ('bert.pooler.dense.weight' under 'bert.pooler')?"""
    return bool(module) and (name == module or name.startswith(module + "."))


def head_in_backbone(name, backbone):
    """Is `name` inside one of the head modules the backbone holds (BERT's 'bert.pooler.*')?"""
    backbone = _as_backbone(backbone)
    return any(under(name, f"{backbone.prefix}.{m}") for m in backbone.head_modules) if backbone.prefix else False


def in_backbone(name, backbone):
    """Is the parameter/buffer `name` part of the backbone proper (under its prefix, outside its head modules)?
    Never, when the prefix is empty."""
    backbone = _as_backbone(backbone)
    return under(name, backbone.prefix) and not head_in_backbone(name, backbone)


def is_head(name, backbone):
    """Not in the backbone proper: the task head, which trains under every method and is saved with its tensors."""
    return not in_backbone(name, backbone)


def is_lora_key(name):
    return "lora_" in name


def is_adapter_key(name):
    return ".adapter.adapter_A." in name or ".adapter.adapter_B." in name
