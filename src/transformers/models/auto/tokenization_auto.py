"""4.4.2's module path for AutoTokenizer and TOKENIZER_MAPPING (config class -> (slow class, fast class)).

RoBERTa's and BERT's slow names are their fast tokenizers here (see the README, "Transformers 4.4.2 tests").
"""
from collections import OrderedDict

from ..bert.configuration_bert import BertConfig
from ..bert.tokenization_bert_fast import BertTokenizer, BertTokenizerFast
from ..deberta_v2.configuration_deberta_v2 import DebertaV2Config
from ..deberta_v2.tokenization_deberta_v2 import DebertaV2Tokenizer
from ..deberta_v2.tokenization_deberta_v2_fast import DebertaV2TokenizerFast
from ..roberta.configuration_roberta import RobertaConfig
from ..roberta.tokenization_roberta_fast import RobertaTokenizer, RobertaTokenizerFast
from .auto import AutoTokenizer  # noqa: F401

TOKENIZER_MAPPING = OrderedDict([
    (DebertaV2Config, (DebertaV2Tokenizer, DebertaV2TokenizerFast)),
    (RobertaConfig, (RobertaTokenizer, RobertaTokenizerFast)),
    (BertConfig, (BertTokenizer, BertTokenizerFast)),
])
