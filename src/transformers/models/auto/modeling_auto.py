"""4.4.2's module path for the Auto model classes and their mappings (config class -> model class).

Only the base models and the sequence-classification heads are shipped: the mappings of the other heads exist, as
in 4.4.2, and are empty.
"""
from collections import OrderedDict

from ..bert.configuration_bert import BertConfig
from ..bert.modeling_bert import BertForSequenceClassification, BertModel
from ..deberta_v2.configuration_deberta_v2 import DebertaV2Config
from ..deberta_v2.modeling_deberta_v2 import DebertaV2ForSequenceClassification, DebertaV2Model
from ..roberta.configuration_roberta import RobertaConfig
from ..roberta.modeling_roberta import RobertaForSequenceClassification, RobertaModel
from .auto import AutoModel, AutoModelForSequenceClassification  # noqa: F401

MODEL_MAPPING = OrderedDict([(DebertaV2Config, DebertaV2Model), (RobertaConfig, RobertaModel),
                             (BertConfig, BertModel)])
MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING = OrderedDict([
    (DebertaV2Config, DebertaV2ForSequenceClassification), (RobertaConfig, RobertaForSequenceClassification),
    (BertConfig, BertForSequenceClassification)])
# heads not shipped here
MODEL_FOR_PRETRAINING_MAPPING = OrderedDict()
MODEL_WITH_LM_HEAD_MAPPING = OrderedDict()
MODEL_FOR_CAUSAL_LM_MAPPING = OrderedDict()
MODEL_FOR_MASKED_LM_MAPPING = OrderedDict()
MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING = OrderedDict()
MODEL_FOR_QUESTION_ANSWERING_MAPPING = OrderedDict()
MODEL_FOR_TABLE_QUESTION_ANSWERING_MAPPING = OrderedDict()
MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING = OrderedDict()
MODEL_FOR_MULTIPLE_CHOICE_MAPPING = OrderedDict()
MODEL_FOR_NEXT_SENTENCE_PREDICTION_MAPPING = OrderedDict()
