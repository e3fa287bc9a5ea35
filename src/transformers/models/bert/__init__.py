from .configuration_bert import BertConfig
from .modeling_bert import BertForSequenceClassification, BertModel, BertPreTrainedModel
from .tokenization_bert_fast import BertTokenizer, BertTokenizerFast
