"""Clean-room rebuild of the LoRA paper's fork of Transformers 4.4.2 (RoBERTa, DeBERTa-V2, BERT with loralib).

Every public name is loaded on first use (PEP 562): `import transformers` itself imports neither torch, tokenizers,
datasets, sklearn nor any model, so scripts start fast and `--help` stays cheap.
"""
import importlib
import importlib.util

__version__ = "4.4.2"

# submodule (relative to this package) -> the public names it defines
_EXPORTS = {
    "activations": ["ACT2FN"],
    "configuration_utils": ["PretrainedConfig"],
    "file_utils": ["CONFIG_NAME", "SAFE_WEIGHTS_NAME", "WEIGHTS_NAME", "is_datasets_available", "is_flax_available",
                   "is_psutil_available", "is_sentencepiece_available", "is_sklearn_available", "is_tf_available",
                   "is_tokenizers_available", "is_torch_available", "is_torch_tpu_available"],
    "modeling_outputs": ["BaseModelOutput", "BaseModelOutputWithPooling", "ModelOutput", "SequenceClassifierOutput"],
    "modeling_utils": ["PreTrainedModel"],
    "tokenization_utils_base": ["BatchEncoding", "PreTrainedTokenizerBase"],
    "tokenization_utils_fast": ["PreTrainedTokenizerFast"],
    "tokenization_utils": ["AddedToken", "PreTrainedTokenizer"],
    "utils": ["logging"],
    "models.auto": ["AutoConfig", "AutoModel", "AutoModelForSequenceClassification", "AutoTokenizer"],
    "models.auto.configuration_auto": ["CONFIG_MAPPING", "MODEL_NAMES_MAPPING"],
    "models.auto.modeling_auto": ["MODEL_FOR_CAUSAL_LM_MAPPING", "MODEL_FOR_MASKED_LM_MAPPING",
                                  "MODEL_FOR_MULTIPLE_CHOICE_MAPPING", "MODEL_FOR_NEXT_SENTENCE_PREDICTION_MAPPING",
                                  "MODEL_FOR_PRETRAINING_MAPPING", "MODEL_FOR_QUESTION_ANSWERING_MAPPING",
                                  "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING", "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING",
                                  "MODEL_FOR_TABLE_QUESTION_ANSWERING_MAPPING", "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING",
                                  "MODEL_MAPPING", "MODEL_WITH_LM_HEAD_MAPPING"],
    "models.auto.tokenization_auto": ["TOKENIZER_MAPPING"],
    "models.roberta.configuration_roberta": ["ROBERTA_PRETRAINED_CONFIG_ARCHIVE_MAP"],
    "models.roberta.modeling_roberta": ["ROBERTA_PRETRAINED_MODEL_ARCHIVE_LIST"],
    "models.bert.configuration_bert": ["BERT_PRETRAINED_CONFIG_ARCHIVE_MAP"],
    "models.bert.modeling_bert": ["BERT_PRETRAINED_MODEL_ARCHIVE_LIST"],
    "models.deberta_v2.configuration_deberta_v2": ["DEBERTA_V2_PRETRAINED_CONFIG_ARCHIVE_MAP"],
    "models.deberta_v2.modeling_deberta_v2": ["DEBERTA_V2_PRETRAINED_MODEL_ARCHIVE_LIST"],
    "models.roberta": ["RobertaConfig", "RobertaForSequenceClassification", "RobertaModel", "RobertaPreTrainedModel",
                       "RobertaTokenizer", "RobertaTokenizerFast"],
    "models.bert": ["BertConfig", "BertForSequenceClassification", "BertModel", "BertPreTrainedModel",
                    "BertTokenizer", "BertTokenizerFast"],
    "models.deberta_v2": ["DebertaV2Config", "DebertaV2ForSequenceClassification", "DebertaV2Model",
                          "DebertaV2PreTrainedModel", "DebertaV2Tokenizer", "DebertaV2TokenizerFast"],
    "data.data_collator": ["DataCollator", "DataCollatorForLanguageModeling", "DataCollatorForTokenClassification",
                           "DataCollatorWithPadding", "default_data_collator"],
    "data.glue": ["glue_compute_metrics"],  # 4.4.2 exported it at the top level
    "hf_argparser": ["HfArgumentParser"],
    "optimization": ["Adafactor", "AdamW", "SchedulerType", "get_constant_schedule", "get_constant_schedule_with_warmup",
                     "get_cosine_schedule_with_warmup", "get_cosine_with_hard_restarts_schedule_with_warmup",
                     "get_linear_schedule_with_warmup", "get_polynomial_decay_schedule_with_warmup", "get_scheduler"],
    "trainer": ["Trainer"],
    "trainer_callback": ["DefaultFlowCallback", "EarlyStoppingCallback", "PrinterCallback", "ProgressCallback", "TensorBoardCallback",
                         "TrainerCallback", "TrainerControl", "TrainerState"],
    "trainer_utils": ["EvalPrediction", "IntervalStrategy", "PredictionOutput", "TrainOutput", "get_last_checkpoint",
                      "set_seed"],
    "training_args": ["TrainingArguments"],
}
_SOURCE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_SOURCE) + ["lora"]


def __getattr__(name):
    if name in _SOURCE:
        value = getattr(importlib.import_module(f".{_SOURCE[name]}", __name__), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # a submodule: transformers.lora, transformers.utils
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups no longer come here
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
