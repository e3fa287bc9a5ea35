"""Which group a parameter belongs to, read from its name: LoRA, adapter, backbone or head.

The bottom of the LoRA/adapter stack: `lora`, `adapters` and the modules that read and write their files all sort
tensors with these rules, and this module imports nothing from the package.

- the backbone is everything under the model's `base_model_prefix` (`roberta.`, `bert.`, `deberta.`);
- the head is every parameter outside it (`classifier.*`); it always trains and is always saved with a method's
  tensors, since a new task needs a new head;
- LoRA tensors have `lora_` in their name (`...query.lora_A`), adapter tensors sit in an `.adapter.` module
  (`...output.adapter.adapter_A.weight`).
"""


def backbone_prefix(model):
    """The name the backbone's parameters start with ('roberta'); '' when the model names none, and then every
    parameter counts as head."""
    return getattr(model, "base_model_prefix", "") or ""


def in_backbone(name, prefix):
    """Is the parameter/buffer `name` inside the backbone named `prefix`? Never, when `prefix` is empty."""
    return bool(prefix) and (name == prefix or name.startswith(prefix + "."))


def is_head(name, prefix):
    """Outside the backbone: the task head a fine-tuning run trains from scratch."""
    return not in_backbone(name, prefix)


def is_lora_key(name):
    return "lora_" in name


def is_adapter_key(name):
    return ".adapter.adapter_A." in name or ".adapter.adapter_B." in name
