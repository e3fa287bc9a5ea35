"""RoBERTa encoder with the LoRA fork's methods: LoRA on the attention query and value projections, bottleneck
adapters (houlsby / pfeiffer, see transformers.adapters) on the block outputs.

Read top to bottom: embeddings -> self-attention -> feed-forward layer -> encoder -> RobertaModel -> classification.
Parameter names equal the hub's roberta-base/large checkpoints and the LoRA fork's, so with apply_lora the LoRA
tensors are roberta.encoder.layer.N.attention.self.{query,value}.lora_{A,B}, and with apply_adapter the adapters
are roberta.encoder.layer.N.{attention.output,output}.adapter.adapter_{A,B}.
"""
import math

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from ...activations import get_activation
from ...adapters import adapt, attention_adapter, ffn_adapter
from ...attention import scaled_dot_product_attention
from ...lora import lora_linear
from ...modeling_outputs import BaseModelOutput, BaseModelOutputWithPooling, SequenceClassifierOutput
from ...modeling_utils import PreTrainedModel
from ...packing import dropout, packing_for
from .configuration_roberta import RobertaConfig


def create_position_ids_from_input_ids(input_ids, padding_idx):
    """Positions count non-pad tokens from padding_idx + 1; pad tokens keep position padding_idx."""
    mask = input_ids.ne(padding_idx).int()
    return (torch.cumsum(mask, dim=1) * mask).long() + padding_idx


class RobertaEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size,
                                                padding_idx=config.pad_token_id)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        # 4.4.2 (and so the LoRA fork) builds the position table a second time here. Drawing its numbers again keeps
        # every later draw (LoRA A, a new head, ...) under a seed equal to theirs.
        self.position_embeddings.reset_parameters()
        self.padding_idx = config.pad_token_id
        self.position_embedding_type = getattr(config, "position_embedding_type", "absolute")

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        batch, length = inputs_embeds.shape[:2]
        if position_ids is None:
            if input_ids is not None:
                position_ids = create_position_ids_from_input_ids(input_ids, self.padding_idx)
            else:  # no ids to find padding in: every position is a real token
                position_ids = self.create_position_ids_from_inputs_embeds(inputs_embeds)
        if token_type_ids is None:
            token_type_ids = torch.zeros(batch, length, dtype=torch.long, device=inputs_embeds.device)
        embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        if self.position_embedding_type == "absolute":
            embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))

    def create_position_ids_from_inputs_embeds(self, inputs_embeds):
        """Positions padding_idx + 1, padding_idx + 2, ... for every row (embeddings cannot show padding)."""
        batch, length = inputs_embeds.shape[:2]
        start = self.padding_idx + 1
        return torch.arange(start, start + length, dtype=torch.long, device=inputs_embeds.device).expand(batch, -1)


class RobertaSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(f"hidden_size {config.hidden_size} is not a multiple of num_attention_heads "
                             f"{config.num_attention_heads}: pick sizes that divide evenly")
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = config.hidden_size
        self.query = lora_linear(config.hidden_size, self.all_head_size, config)
        self.key = nn.Linear(config.hidden_size, self.all_head_size)
        self.value = lora_linear(config.hidden_size, self.all_head_size, config)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.position_embedding_type = getattr(config, "position_embedding_type", "absolute")
        if self.position_embedding_type in ("relative_key", "relative_key_query"):
            self.max_position_embeddings = config.max_position_embeddings
            self.distance_embedding = nn.Embedding(2 * config.max_position_embeddings - 1, self.attention_head_size)
        elif self.position_embedding_type != "absolute":
            raise ValueError(f"position_embedding_type '{self.position_embedding_type}' is unknown: use absolute, "
                             "relative_key or relative_key_query")

    def _heads(self, x):  # [batch, len, hidden] -> [batch, heads, len, head_size]
        return x.view(*x.shape[:2], self.num_attention_heads, self.attention_head_size).transpose(1, 2)

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False, packing=None):
        # packed tokens ([tokens, hidden], see transformers.packing) go back to [batch, len] for attention only
        padded = (lambda x: x) if packing is None else packing.unpack
        q, k, v = (self._heads(padded(layer(hidden_states))) for layer in (self.query, self.key, self.value))
        batch, length = q.shape[0], q.shape[2]
        if self.position_embedding_type == "absolute" and head_mask is None and not output_attentions:
            # torch's kernel or the lean CPU training path; attention_mask is additive (0 keep, -10000 drop), as 4.4.2
            context = scaled_dot_product_attention(q, k, v, attention_mask, self.dropout.p if self.training else 0.0)
            probs = None
        else:
            scores = q @ k.transpose(-1, -2)
            if self.position_embedding_type != "absolute":
                pos = torch.arange(length, device=hidden_states.device)
                distance = pos[:, None] - pos[None, :] + self.max_position_embeddings - 1
                rel = self.distance_embedding(distance).to(q.dtype)  # [len, len, head_size]
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
        context = context.transpose(1, 2).reshape(batch, length, self.all_head_size)
        return (context if packing is None else packing.pack(context)), probs


class RobertaSelfOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.adapter = attention_adapter(config)  # houlsby only; registered last, so drawn last by init_weights

    def forward(self, hidden_states, input_tensor, packing=None):
        hidden = adapt(self.adapter, dropout(self.dropout, self.dense(hidden_states), packing), input_tensor,
                       self.LayerNorm)
        return self.LayerNorm(hidden + input_tensor)


class RobertaAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self = RobertaSelfAttention(config)
        self.output = RobertaSelfOutput(config)

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False, packing=None):
        context, probs = self.self(hidden_states, attention_mask, head_mask, output_attentions, packing)
        return self.output(context, hidden_states, packing), probs


class RobertaIntermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = get_activation(config.hidden_act)

    def forward(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))


class RobertaOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.adapter = ffn_adapter(config)  # houlsby and pfeiffer

    def forward(self, hidden_states, input_tensor, packing=None):
        hidden = adapt(self.adapter, dropout(self.dropout, self.dense(hidden_states), packing), input_tensor,
                       self.LayerNorm)
        return self.LayerNorm(hidden + input_tensor)


class RobertaLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attention = RobertaAttention(config)
        self.intermediate = RobertaIntermediate(config)
        self.output = RobertaOutput(config)

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False, packing=None):
        attention_output, probs = self.attention(hidden_states, attention_mask, head_mask, output_attentions, packing)
        return self.output(self.intermediate(attention_output), attention_output, packing), probs


class RobertaEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.layer = nn.ModuleList([RobertaLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False,
                output_hidden_states=False, packing=None):
        if packing is not None:
            hidden_states = packing.pack(hidden_states)
        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for i, layer in enumerate(self.layer):
            layer_head_mask = head_mask[i] if head_mask is not None else None
            if getattr(self.config, "gradient_checkpointing", False) and self.training:
                hidden_states, probs = torch.utils.checkpoint.checkpoint(
                    layer, hidden_states, attention_mask, layer_head_mask, output_attentions, packing,
                    use_reentrant=False)
            else:
                hidden_states, probs = layer(hidden_states, attention_mask, layer_head_mask, output_attentions, packing)
            if output_hidden_states:
                all_hidden += (hidden_states,)
            if output_attentions:
                all_attentions += (probs,)
        if packing is not None:
            hidden_states = packing.unpack(hidden_states)
        return BaseModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden, attentions=all_attentions)


class RobertaPooler(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states):
        return self.activation(self.dense(hidden_states[:, 0]))


class RobertaPreTrainedModel(PreTrainedModel):
    config_class = RobertaConfig
    base_model_prefix = "roberta"
    _keys_to_ignore_on_load_unexpected = [r"position_ids"]

    _init_zero_padding_row = False  # as 4.4.2's RoBERTa


def _extended_attention_mask(attention_mask, dtype):
    """[batch, len] 1/0 mask -> additive [batch, 1, 1, len] mask: 0 where attended, -10000 where masked (4.4.2)."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * -10000.0


def _expand_head_mask(head_mask, num_layers, dtype):
    """[heads] or [layers, heads] -> [layers, 1, heads, 1, 1], multiplied into the attention probabilities."""
    if head_mask is None:
        return None
    head_mask = head_mask.to(dtype)
    if head_mask.dim() == 1:
        head_mask = head_mask.expand(num_layers, -1)
    return head_mask[:, None, :, None, None]


class RobertaModel(RobertaPreTrainedModel):
    def __init__(self, config, add_pooling_layer=True):
        super().__init__(config)
        self.embeddings = RobertaEmbeddings(config)
        self.encoder = RobertaEncoder(config)
        self.pooler = RobertaPooler(config) if add_pooling_layer else None
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
        shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
        device = input_ids.device if input_ids is not None else inputs_embeds.device
        if attention_mask is None:
            attention_mask = torch.ones(shape, device=device)

        embedding_output = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        encoder_outputs = self.encoder(
            embedding_output,
            attention_mask=_extended_attention_mask(attention_mask, embedding_output.dtype),
            head_mask=_expand_head_mask(head_mask, cfg.num_hidden_layers, embedding_output.dtype),
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            packing=packing,
        )
        sequence_output = encoder_outputs.last_hidden_state
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None
        if not return_dict:
            return (sequence_output, pooled_output) + encoder_outputs.to_tuple()[1:]
        return BaseModelOutputWithPooling(last_hidden_state=sequence_output, pooler_output=pooled_output,
                                          hidden_states=encoder_outputs.hidden_states,
                                          attentions=encoder_outputs.attentions)


class RobertaClassificationHead(nn.Module):
    """<s> token -> dropout -> dense -> tanh -> dropout -> out_proj. The fork's cls_dropout, when set, replaces
    hidden_dropout_prob here."""

    def __init__(self, config):
        super().__init__()
        p = config.cls_dropout if getattr(config, "cls_dropout", None) is not None else config.hidden_dropout_prob
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(p)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, features):
        x = self.dropout(features[:, 0, :])
        x = torch.tanh(self.dense(x))
        return self.out_proj(self.dropout(x))


def sequence_classification_loss(logits, labels, num_labels):
    """4.4.2's rule: one label means regression (MSE), more mean single-label classification (cross-entropy)."""
    if num_labels == 1:
        return F.mse_loss(logits.view(-1), labels.view(-1).to(logits.dtype))
    return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1))


class RobertaForSequenceClassification(RobertaPreTrainedModel):
    # AdapterHub's head (pytorch_model_head.bin, heads.<name>.<i>.*): its layer 1 is our dense, its layer 4 out_proj
    adapterhub_head_layers = {"1": "classifier.dense", "4": "classifier.out_proj"}

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.classifier = RobertaClassificationHead(config)
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
        outputs = self.roberta(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                               position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               return_dict=True, packing=packing)
        logits = self.classifier(outputs.last_hidden_state)
        loss = sequence_classification_loss(logits, labels, self.num_labels) if labels is not None else None
        if not return_dict:
            rest = tuple(x for x in (outputs.hidden_states, outputs.attentions) if x is not None)
            return ((loss,) if loss is not None else ()) + (logits,) + rest
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                        attentions=outputs.attentions)

ROBERTA_PRETRAINED_MODEL_ARCHIVE_LIST = ["roberta-base", "roberta-large", "roberta-large-mnli", "distilroberta-base",
                                         "roberta-base-openai-detector", "roberta-large-openai-detector"]
