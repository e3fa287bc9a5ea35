"""BERT configuration: the 4.4.2 fields and defaults (bert-base-uncased) plus the LoRA fork's flags."""
from ...configuration_utils import PretrainedConfig


class BertConfig(PretrainedConfig):
    model_type = "bert"

    def __init__(
        self,
        vocab_size=30522,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=512,
        type_vocab_size=2,
        initializer_range=0.02,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        gradient_checkpointing=False,
        position_embedding_type="absolute",
        use_cache=True,
        apply_lora=False,
        lora_r=None,
        lora_alpha=None,
        apply_adapter=False,
        adapter_type="houlsby",
        adapter_size=64,
        apply_bitfit=False,
        reg_loss_wgt=0.0,
        masking_prob=0.0,
        **kwargs,
    ):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.gradient_checkpointing = gradient_checkpointing
        self.position_embedding_type = position_embedding_type
        self.use_cache = use_cache
        self.apply_lora = apply_lora
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.apply_adapter = apply_adapter
        self.adapter_type = adapter_type
        self.adapter_size = adapter_size
        self.apply_bitfit = apply_bitfit
        self.reg_loss_wgt = reg_loss_wgt
        self.masking_prob = masking_prob

BERT_PRETRAINED_CONFIG_ARCHIVE_MAP = {name: f"https://huggingface.co/{name}/resolve/main/config.json" for name in (
    "bert-base-uncased", "bert-large-uncased", "bert-base-cased", "bert-large-cased",
    "bert-base-multilingual-uncased", "bert-base-multilingual-cased", "bert-base-chinese")}
