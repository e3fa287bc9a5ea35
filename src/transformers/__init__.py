"""Clean-room rebuild of the LoRA paper's fork of Transformers 4.4.2 (RoBERTa, DeBERTa-V2, BERT with loralib)."""
__version__ = "4.4.2"

from . import lora
from .activations import ACT2FN
from .configuration_utils import PretrainedConfig
from .file_utils import CONFIG_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_NAME
from .modeling_outputs import (BaseModelOutput, BaseModelOutputWithPooling, ModelOutput,
                               SequenceClassifierOutput)
from .modeling_utils import PreTrainedModel
from .tokenization_utils_base import BatchEncoding, PreTrainedTokenizerBase
from .tokenization_utils_fast import PreTrainedTokenizerFast
from .utils import logging

# models
from .models.auto import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer
from .models.roberta import (RobertaConfig, RobertaForSequenceClassification, RobertaModel,
                             RobertaPreTrainedModel, RobertaTokenizer, RobertaTokenizerFast)
from .models.bert import (BertConfig, BertForSequenceClassification, BertModel, BertPreTrainedModel,
                          BertTokenizer, BertTokenizerFast)
from .models.deberta_v2 import (DebertaV2Config, DebertaV2ForSequenceClassification, DebertaV2Model,
                                DebertaV2PreTrainedModel, DebertaV2Tokenizer, DebertaV2TokenizerFast)
