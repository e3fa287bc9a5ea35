"""DeBERTa-V2/V3 configuration: the 4.4.2 fields and defaults (microsoft/deberta-v2-xlarge) plus the fork's flags
(LoRA, R-Drop, Cutoff, cls_dropout; adapters and BitFit with the defaults of the fork's RoBERTa flags).

Checkpoint configs on the hub also carry fields that 4.4.2 reads with getattr and never declares; they are kept as
attributes by PretrainedConfig: position_buckets, share_att_key, norm_rel_ebd, conv_kernel_size, conv_groups,
conv_act, embedding_size, attention_head_size.
"""
from ...configuration_utils import PretrainedConfig


class DebertaV2Config(PretrainedConfig):
    model_type = "deberta-v2"

    def __init__(
        self,
        vocab_size=128100,
        hidden_size=1536,
        num_hidden_layers=24,
        num_attention_heads=24,
        intermediate_size=6144,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=512,
        type_vocab_size=0,
        initializer_range=0.02,
        layer_norm_eps=1e-7,
        relative_attention=False,
        max_relative_positions=-1,
        pad_token_id=0,
        position_biased_input=True,
        pos_att_type=None,
        pooler_dropout=0,
        pooler_hidden_act="gelu",
        apply_lora=False,
        lora_r=None,
        lora_alpha=None,
        apply_adapter=False,
        adapter_type="houlsby",
        adapter_size=64,
        apply_bitfit=False,
        cls_dropout=None,
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
        self.relative_attention = relative_attention
        self.max_relative_positions = max_relative_positions
        self.position_biased_input = position_biased_input
        if isinstance(pos_att_type, str):  # hub configs write "p2c|c2p"
            pos_att_type = [x.strip() for x in pos_att_type.lower().split("|")]
        self.pos_att_type = pos_att_type
        self.layer_norm_eps = layer_norm_eps
        # The pooler maps the [CLS] state to itself, so its width is the hidden size unless a checkpoint says so.
        self.pooler_hidden_size = kwargs.get("pooler_hidden_size", hidden_size)
        self.pooler_dropout = pooler_dropout
        self.pooler_hidden_act = pooler_hidden_act
        self.apply_lora = apply_lora
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.apply_adapter = apply_adapter
        self.adapter_type = adapter_type
        self.adapter_size = adapter_size
        self.apply_bitfit = apply_bitfit
        self.cls_dropout = cls_dropout
        self.reg_loss_wgt = reg_loss_wgt
        self.masking_prob = masking_prob

DEBERTA_V2_PRETRAINED_CONFIG_ARCHIVE_MAP = {name: f"https://huggingface.co/{name}/resolve/main/config.json" for name in (
    "microsoft/deberta-v2-xlarge", "microsoft/deberta-v2-xxlarge", "microsoft/deberta-v2-xlarge-mnli",
    "microsoft/deberta-v2-xxlarge-mnli")}
