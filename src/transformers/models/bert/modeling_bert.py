"""BERT encoder, pooler and sequence-classification head, with LoRA on the attention query/value projections.

Module and parameter names follow the hub checkpoints (bert.embeddings.word_embeddings, bert.encoder.layer.N.
attention.self.query, bert.pooler.dense, classifier), so bert-base / MiniLM weights load unchanged. With
config.apply_lora, query and value are loralib.Linear layers (rank lora_r, scaling lora_alpha / lora_r).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ...activations import get_activation
from ...attention import scaled_dot_product_attention
from ...lora import lora_linear
from ...modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from ...modeling_utils import PreTrainedModel
from ...packing import dropout, packing_for
from .configuration_bert import BertConfig


class BertEmbeddings(nn.Module):
    """Sum of word, position and token-type embeddings, then LayerNorm and dropout."""

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.position_embedding_type = config.position_embedding_type

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        seq_len = inputs_embeds.shape[1]
        if seq_len > self.position_embeddings.num_embeddings:
            raise ValueError(f"sequence length {seq_len} exceeds max_position_embeddings="
                             f"{self.position_embeddings.num_embeddings}: truncate the inputs (e.g. --max_seq_length)")
        if position_ids is None:
            position_ids = torch.arange(seq_len, device=inputs_embeds.device)[None, :]
        if token_type_ids is None:
            token_type_ids = torch.zeros(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
        embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        if self.position_embedding_type == "absolute":  # relative types encode positions in attention instead
            embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class BertSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(f"hidden_size={config.hidden_size} is not a multiple of num_attention_heads="
                             f"{config.num_attention_heads}: change one of them")
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = config.hidden_size
        self.query = lora_linear(config.hidden_size, self.all_head_size, config)
        self.key = nn.Linear(config.hidden_size, self.all_head_size)
        self.value = lora_linear(config.hidden_size, self.all_head_size, config)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.position_embedding_type = config.position_embedding_type
        if self.position_embedding_type != "absolute":  # one embedding per signed distance l - r
            self.max_position_embeddings = config.max_position_embeddings
            self.distance_embedding = nn.Embedding(2 * config.max_position_embeddings - 1, self.attention_head_size)

    def _heads(self, x):  # (batch, seq, all_head) -> (batch, heads, seq, head_size)
        return x.view(*x.shape[:2], self.num_attention_heads, self.attention_head_size).transpose(1, 2)

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False, packing=None):
        # packed tokens ([tokens, hidden], see transformers.packing) go back to (batch, seq) for attention only
        padded = (lambda x: x) if packing is None else packing.unpack
        q, k, v = (self._heads(padded(layer(hidden_states))) for layer in (self.query, self.key, self.value))
        batch, length = q.shape[0], q.shape[2]
        if output_attentions or head_mask is not None or self.position_embedding_type != "absolute":
            scores = q @ k.transpose(-1, -2)
            if self.position_embedding_type != "absolute":
                pos = torch.arange(length, device=hidden_states.device)
                rel = self.distance_embedding(pos[:, None] - pos[None, :] + self.max_position_embeddings - 1)
                rel = rel.to(q.dtype)  # (len_l, len_r, head_size)
                scores = scores + torch.einsum("bhld,lrd->bhlr", q, rel)
                if self.position_embedding_type == "relative_key_query":
                    scores = scores + torch.einsum("bhrd,lrd->bhlr", k, rel)
            scores = scores / math.sqrt(self.attention_head_size)
            if attention_mask is not None:
                scores = scores + attention_mask
            probs = self.dropout(scores.softmax(dim=-1))
            if head_mask is not None:
                probs = probs * head_mask
            context = probs @ v
        else:  # same maths: torch's kernel, or the lean CPU training path (transformers.attention)
            probs = None
            context = scaled_dot_product_attention(q, k, v, attention_mask, self.dropout.p if self.training else 0.0)
        context = context.transpose(1, 2).reshape(batch, length, self.all_head_size)
        return (context if packing is None else packing.pack(context)), probs


class BertSelfOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor, packing=None):
        return self.LayerNorm(dropout(self.dropout, self.dense(hidden_states), packing) + input_tensor)


class BertAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False, packing=None):
        context, probs = self.self(hidden_states, attention_mask, head_mask, output_attentions, packing)
        return self.output(context, hidden_states, packing), probs


class BertIntermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = get_activation(config.hidden_act)

    def forward(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))


class BertOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor, packing=None):
        return self.LayerNorm(dropout(self.dropout, self.dense(hidden_states), packing) + input_tensor)


class BertLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False, packing=None):
        attention_output, probs = self.attention(hidden_states, attention_mask, head_mask, output_attentions, packing)
        return self.output(self.intermediate(attention_output), attention_output, packing), probs


class BertEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False,
                output_hidden_states=False, packing=None):
        if packing is not None:
            hidden_states = packing.pack(hidden_states)
        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for i, layer in enumerate(self.layer):
            layer_head_mask = head_mask[i] if head_mask is not None else None
            if getattr(self.config, "gradient_checkpointing", False) and self.training:
                hidden_states, probs = checkpoint(layer, hidden_states, attention_mask, layer_head_mask,
                                                  output_attentions, packing, use_reentrant=False)
            else:
                hidden_states, probs = layer(hidden_states, attention_mask, layer_head_mask, output_attentions, packing)
            if output_hidden_states:
                all_hidden += (hidden_states,)
            if output_attentions:
                all_attentions += (probs,)
        if packing is not None:
            hidden_states = packing.unpack(hidden_states)
        return hidden_states, all_hidden, all_attentions


class BertPooler(nn.Module):
    """tanh(dense(hidden state of the first token, [CLS]))."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states):
        return self.activation(self.dense(hidden_states[:, 0]))


class BertPreTrainedModel(PreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    # The pooler (tanh(dense([CLS]))) feeds only the classifier: it is the first layer of the task head, as RoBERTa's
    # classifier.dense and DeBERTa's top-level pooler are, though it sits inside `bert.`. Under LoRA and BitFit it
    # trains and is saved with the classifier (transformers.parameter_groups).
    head_modules_in_backbone = ("pooler",)
    _keys_to_ignore_on_load_unexpected = [r"position_ids"]  # a buffer that older checkpoints (4.4.2's) saved


def _check_supported(config):
    if config.position_embedding_type not in ("absolute", "relative_key", "relative_key_query"):
        raise ValueError(f"position_embedding_type={config.position_embedding_type!r} is unknown: use absolute, "
                         "relative_key or relative_key_query")
    if getattr(config, "apply_adapter", False):
        raise ValueError("apply_adapter is not supported for BERT: use apply_lora (or apply_bitfit)")


class BertModel(BertPreTrainedModel):
    def __init__(self, config, add_pooling_layer=True):
        super().__init__(config)
        _check_supported(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.init_weights()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, packing=None):
        """packing (a transformers.packing.PackedTokens, from a classification head) runs the encoder on the kept
        tokens only; the other rows of last_hidden_state are then zeros."""
        cfg = self.config
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = cfg.use_return_dict if return_dict is None else return_dict
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")

        embedding_output = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        extended_mask = None
        if attention_mask is not None:
            # (batch, seq) 1/0 -> additive (batch, 1, 1, seq): 0 where attended, dtype minimum where masked.
            mask = attention_mask[:, None, None, :].to(embedding_output.dtype)
            extended_mask = (1.0 - mask) * torch.finfo(embedding_output.dtype).min
        if head_mask is not None:
            # (heads,) or (layers, heads) -> (layers, batch=1, heads, 1, 1)
            head_mask = head_mask.to(embedding_output.dtype)
            if head_mask.dim() == 1:
                head_mask = head_mask.expand(cfg.num_hidden_layers, -1)
            head_mask = head_mask[:, None, :, None, None]

        sequence_output, all_hidden, all_attentions = self.encoder(
            embedding_output, extended_mask, head_mask, output_attentions, output_hidden_states, packing)
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None
        if not return_dict:
            return tuple(x for x in (sequence_output, pooled_output, all_hidden, all_attentions) if x is not None)
        return BaseModelOutputWithPooling(last_hidden_state=sequence_output, pooler_output=pooled_output,
                                          hidden_states=all_hidden, attentions=all_attentions)


class BertForSequenceClassification(BertPreTrainedModel):
    """Linear classifier on the pooled [CLS] output; num_labels == 1 is regression (MSE), else cross-entropy."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.pack_tokens = True  # run on real tokens only (transformers.packing); False: the padded computation
        self.init_weights()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        cfg = self.config
        return_dict = cfg.use_return_dict if return_dict is None else return_dict
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        packing = packing_for(self, attention_mask, output_attentions, output_hidden_states, head_mask is not None)
        outputs = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                            position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                            output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                            return_dict=True, packing=packing)
        logits = self.classifier(self.dropout(outputs.pooler_output))

        loss = None
        if labels is not None:
            if self.num_labels == 1:
                loss = F.mse_loss(logits.view(-1), labels.view(-1).to(logits.dtype))
            else:
                loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        if not return_dict:
            out = tuple(x for x in (logits, outputs.hidden_states, outputs.attentions) if x is not None)
            return (loss,) + out if loss is not None else out
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                        attentions=outputs.attentions)

BERT_PRETRAINED_MODEL_ARCHIVE_LIST = ["bert-base-uncased", "bert-large-uncased", "bert-base-cased", "bert-large-cased",
                                      "bert-base-multilingual-uncased", "bert-base-multilingual-cased",
                                      "bert-base-chinese"]
