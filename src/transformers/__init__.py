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

# training (Trainer helper)
from .data.data_collator import DataCollator, DataCollatorWithPadding, default_data_collator
from .hf_argparser import HfArgumentParser
from .optimization import (AdamW, SchedulerType, get_constant_schedule, get_constant_schedule_with_warmup,
                           get_cosine_schedule_with_warmup, get_cosine_with_hard_restarts_schedule_with_warmup,
                           get_linear_schedule_with_warmup, get_polynomial_decay_schedule_with_warmup, get_scheduler)
from .trainer import Trainer
from .trainer_callback import (DefaultFlowCallback, PrinterCallback, ProgressCallback, TensorBoardCallback,
                               TrainerCallback, TrainerControl, TrainerState)
from .trainer_utils import (EvalPrediction, IntervalStrategy, PredictionOutput, TrainOutput, get_last_checkpoint,
                            set_seed)
from .training_args import TrainingArguments

# GLUE (4.4.2 exported glue_compute_metrics at the top level)
from .data.glue import glue_compute_metrics
