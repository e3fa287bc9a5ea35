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
    "file_utils": ["CONFIG_NAME", "SAFE_WEIGHTS_NAME", "WEIGHTS_NAME"],
    "modeling_outputs": ["BaseModelOutput", "BaseModelOutputWithPooling", "ModelOutput", "SequenceClassifierOutput"],
    "modeling_utils": ["PreTrainedModel"],
    "tokenization_utils_base": ["BatchEncoding", "PreTrainedTokenizerBase"],
    "tokenization_utils_fast": ["PreTrainedTokenizerFast"],
    "utils": ["logging"],
    "models.auto": ["AutoConfig", "AutoModel", "AutoModelForSequenceClassification", "AutoTokenizer"],
    "models.roberta": ["RobertaConfig", "RobertaForSequenceClassification", "RobertaModel", "RobertaPreTrainedModel",
                       "RobertaTokenizer", "RobertaTokenizerFast"],
    "models.bert": ["BertConfig", "BertForSequenceClassification", "BertModel", "BertPreTrainedModel",
                    "BertTokenizer", "BertTokenizerFast"],
    "models.deberta_v2": ["DebertaV2Config", "DebertaV2ForSequenceClassification", "DebertaV2Model",
                          "DebertaV2PreTrainedModel", "DebertaV2Tokenizer", "DebertaV2TokenizerFast"],
    "data.data_collator": ["DataCollator", "DataCollatorWithPadding", "default_data_collator"],
    "data.glue": ["glue_compute_metrics"],  # 4.4.2 exported it at the top level
    "hf_argparser": ["HfArgumentParser"],
    "optimization": ["AdamW", "SchedulerType", "get_constant_schedule", "get_constant_schedule_with_warmup",
                     "get_cosine_schedule_with_warmup", "get_cosine_with_hard_restarts_schedule_with_warmup",
                     "get_linear_schedule_with_warmup", "get_polynomial_decay_schedule_with_warmup", "get_scheduler"],
    "trainer": ["Trainer"],
    "trainer_callback": ["DefaultFlowCallback", "PrinterCallback", "ProgressCallback", "TensorBoardCallback",
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
