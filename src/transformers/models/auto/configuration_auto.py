"""4.4.2's module path for AutoConfig and CONFIG_MAPPING (model_type -> config class).

The order matters when a config.json has no model_type and the type is guessed from the path: no key may be part
of a later key, so 'deberta-v2' and 'roberta' come before 'bert'.
"""
from collections import OrderedDict

from ..bert.configuration_bert import BertConfig
from ..deberta_v2.configuration_deberta_v2 import DebertaV2Config
from ..roberta.configuration_roberta import RobertaConfig
from .auto import AutoConfig  # noqa: F401

CONFIG_MAPPING = OrderedDict([("deberta-v2", DebertaV2Config), ("roberta", RobertaConfig), ("bert", BertConfig)])
MODEL_NAMES_MAPPING = OrderedDict([("deberta-v2", "DeBERTa-v2"), ("roberta", "RoBERTa"), ("bert", "BERT")])
