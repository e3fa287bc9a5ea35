"""DeBERTa-V2/V3 (He et al.) with the LoRA fork's changes, and a faster disentangled attention.

Numerics follow transformers 4.4.2 (and therefore the fork): checkpoint keys are the hub's, a query row whose
tokens are all masked (a padding position) gets zero attention, relative log-buckets are computed in float64.

Fork specifics
  * LoRA (config.apply_lora): query_proj and value_proj are loralib.Linear(r=lora_r, lora_alpha, merge_weights=False),
    lora_A ~ N(0, initializer_range), lora_B = 0. With share_att_key the relative-position query projection uses
    the base query weight only, never the LoRA delta (the fork calls nn.Linear.forward on the LoRA layer).
  * Adapters (config.apply_adapter, adapter_type houlsby / pfeiffer, adapter_size): placed as the fork placed them
    in RoBERTa (the fork itself has none in DeBERTa-V2; see transformers.adapters), named
    deberta.encoder.layer.N.{attention.output,output}.adapter.adapter_{A,B}. AdapterHub heads map heads.<name>.1 to
    pooler.dense and heads.<name>.4 to classifier.
  * cls_dropout: dropout before the classifier; falls back to hidden_dropout_prob.
  * reg_loss_wgt > 0 (R-Drop) and masking_prob > 0 (Cutoff): a second forward pass, where with Cutoff each token
    that is not [CLS]/[SEP]/padding becomes [UNK] with probability masking_prob (ids from config.cls_token_id,
    sep_token_id, unk_token_id, default 1/2/3 as in the fork). With m = (logits1 + logits2) / 2:
        loss = CE(l1) + CE(l2) + 0.5 * reg_loss_wgt * (KL(softmax(m) || softmax(l1)) + KL(softmax(m) || softmax(l2)))
    where each KL is F.kl_div(log_softmax(l), softmax(m), reduction="mean") (mean over batch x labels), as in the
    fork. Deliberate departures from the fork's quirks:
      - the second pass runs only in training mode (the fork also ran it in eval, doubling evaluation cost and
        mixing the regulariser into the reported eval loss); eval loss is the plain single-pass loss;
      - regression (num_labels == 1) uses MSE for both passes and MSE(l, m) as the consistency term (the fork fed a
        single logit to cross-entropy there, a loss that is identically zero);
      - Cutoff needs input_ids (ValueError with inputs_embeds).

Efficient disentangled attention (same result as the reference gathers):
  * relative positions are built once per forward, on the input's device, for the lengths the sequence can reach
    (offsets -(L-1)..L-1 mapped through the buckets and the clamp) and cached per (length, device);
  * only those rows of the relative-embedding table are projected, all heads at once;
  * heads are laid out head-major ([heads * B, L, d]), so each head's product with its position rows is one GEMM
    over all B * L rows, with no per-batch copies of the position tables;
  * c2p/p2c are matrix products against the reachable positions only; when that is at most 2L-1 offsets the
    Toeplitz structure is read out with a pad-free "skew" view (slice + reshape, no gather); when log buckets
    make fewer distinct rows reachable than 2L-1, one gather over the reachable bucket rows is used instead;
  * padding is handled with a key mask plus zeroing of padding query rows, never an [L, L] mask per layer;
  * the position bias is added into the score matrix in place, and the key mask is applied outside autograd (its
    gradient is zero anyway: masked keys get probability exactly 0, so softmax's backward already gives 0 there);
  * Dropout draws its CPU mask from 16-bit uniforms (see Dropout): torch's CPU bernoulli_ costs one Mersenne-Twister
    double per element and was the largest single cost of an attention block at length 512.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ...activations import get_activation
from ...adapters import adapt, attention_adapter, ffn_adapter
from ...lora import lora_linear
from ...modeling_outputs import BaseModelOutput, SequenceClassifierOutput
from ...modeling_utils import PreTrainedModel
from ...packing import dropout, packing_for
from .configuration_deberta_v2 import DebertaV2Config


def make_log_bucket_position(relative_pos, bucket_size, max_position):
    """Map offsets to log-spaced buckets: exact within +-bucket_size/2, logarithmic beyond (float64, as 4.4.2)."""
    rel = relative_pos.to(torch.float64)
    mid = bucket_size // 2
    sign = torch.sign(rel)
    abs_pos = torch.where((rel < mid) & (rel > -mid), torch.full_like(rel, mid - 1), rel.abs())
    log_pos = torch.ceil(torch.log(abs_pos / mid) / math.log((max_position - 1) / mid) * (mid - 1)) + mid
    return torch.where(abs_pos <= mid, rel, log_pos * sign).long()


class RelativePositions:
    """Index tables for one sequence length, shared by all layers.

    `rows` are the rel-embedding rows reachable from offsets -(L-1)..L-1. In "skew" mode `index[m]` is the row for
    offset delta = (L-1) - m (m = 0..2L-2); in "gather" mode `lo` is the first reachable row and `index[i, j]` the
    row (minus lo) for query i, key j.
    """

    def __init__(self, length, span, bucket_size, max_position, device):
        offsets = torch.arange(length - 1, -length, -1, device=device)  # delta = i - j, from L-1 down to -(L-1)
        buckets = make_log_bucket_position(offsets, bucket_size, max_position) if bucket_size > 0 else offsets
        rows = torch.clamp(buckets + span, 0, 2 * span - 1)  # 4.4.2 clamps c2p/p2c indices into the table
        lo, hi = int(rows.min()), int(rows.max()) + 1
        self.skew = hi - lo >= 2 * length - 1
        if self.skew:
            self.index = rows
        else:
            self.lo, self.hi = lo, hi
            # index[i, j] = rows[(L-1) - (i - j)]
            ij = torch.arange(length, device=device)
            self.index = rows[(length - 1) - (ij[:, None] - ij[None, :])] - lo
            # p2c[i, j] reads row j of a [L, R] table: flat_index[i, j] = j * R + index[i, j] (gather, no transpose)
            self.flat_index = (ij[None, :] * (hi - lo) + self.index).view(1, length * length)


def _skew(scores, length):
    """scores[..., i, m] with m = j - i + L - 1 (2L-1 columns) -> out[..., i, j]; slicing and reshaping only."""
    if length == 1:
        return scores
    lead = scores.shape[:-2]
    flat = scores.reshape(*lead, length * (2 * length - 1))
    flat = flat[..., length - 1: length - 1 + length * (2 * length - 2)]
    return flat.reshape(*lead, length, 2 * length - 2)[..., :length]


class Dropout(nn.Dropout):
    """nn.Dropout with a cheaper mask on CPU; same module interface and state (no parameters, `p`).

    On CPU each element keeps with a 16-bit uniform draw (four per random 64-bit word), so the drop rate is p rounded
    to a multiple of 2**-16 (0.1 -> 0.1000061) and kept values are scaled by 1 / (1 - that rate): unbiased, and the
    rounding is ~20x below the sampling noise of the dropped fraction of one 2x12x512x512 attention map. Other devices
    use torch's fused dropout.
    """

    def forward(self, x):
        if not self.training or not 0.0 < self.p < 1.0 or x.device.type != "cpu":
            return super().forward(x)
        n = x.numel()
        words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2**63, 2**63 - 1)
        threshold = min(round(self.p * 65536), 65535)  # drop when the uniform 16-bit draw u in [0, 65535] is below it
        keep = torch.ge(words.view(torch.int16)[:n].view(x.shape), threshold - 32768, out=torch.empty_like(x))
        return x * keep.mul_(65536 / (65536 - threshold))


class DebertaV2Embeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embedding_size = getattr(config, "embedding_size", config.hidden_size)
        self.word_embeddings = nn.Embedding(config.vocab_size, self.embedding_size, padding_idx=config.pad_token_id)
        self.position_biased_input = getattr(config, "position_biased_input", True)
        self.position_embeddings = (nn.Embedding(config.max_position_embeddings, self.embedding_size)
                                    if self.position_biased_input else None)
        self.token_type_embeddings = (nn.Embedding(config.type_vocab_size, self.embedding_size)
                                      if config.type_vocab_size > 0 else None)
        self.embed_proj = (nn.Linear(self.embedding_size, config.hidden_size, bias=False)
                           if self.embedding_size != config.hidden_size else None)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids, position_ids, mask, inputs_embeds=None):
        embeddings = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        if self.position_embeddings is not None:
            if position_ids is None:
                position_ids = torch.arange(embeddings.shape[1], device=embeddings.device)[None]
            embeddings = embeddings + self.position_embeddings(position_ids)
        if self.token_type_embeddings is not None:
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        if self.embed_proj is not None:
            embeddings = self.embed_proj(embeddings)
        embeddings = self.LayerNorm(embeddings) * mask.unsqueeze(-1).to(embeddings.dtype)
        return self.dropout(embeddings)


class DisentangledSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.hidden_size % config.num_attention_heads != 0:
            raise ValueError(f"hidden_size ({config.hidden_size}) is not a multiple of num_attention_heads "
                             f"({config.num_attention_heads}): change one of them in the config")
        self.num_heads = config.num_attention_heads
        self.head_size = getattr(config, "attention_head_size", config.hidden_size // config.num_attention_heads)
        all_head = self.num_heads * self.head_size
        self.query_proj = lora_linear(config.hidden_size, all_head, config)
        self.key_proj = nn.Linear(config.hidden_size, all_head)
        self.value_proj = lora_linear(config.hidden_size, all_head, config)

        self.share_att_key = getattr(config, "share_att_key", False)
        self.pos_att_type = list(config.pos_att_type or [])
        self.relative_attention = getattr(config, "relative_attention", False)
        if self.relative_attention:
            self.pos_dropout = Dropout(config.hidden_dropout_prob)
            if not self.share_att_key:
                if "c2p" in self.pos_att_type:
                    self.pos_key_proj = nn.Linear(config.hidden_size, all_head)
                if "p2c" in self.pos_att_type:
                    self.pos_query_proj = nn.Linear(config.hidden_size, all_head)
        scale_factor = 1 + ("c2p" in self.pos_att_type) + ("p2c" in self.pos_att_type)
        self.inv_scale = 1.0 / math.sqrt(self.head_size * scale_factor)
        self.dropout = Dropout(config.attention_probs_dropout_prob)

    def _heads(self, x):  # [B, L, heads * d] -> [heads * B, L, d], head-major so one head's B * L rows are adjacent
        batch, length = x.shape[:2]
        x = x.view(batch, length, self.num_heads, self.head_size).permute(2, 0, 1, 3)
        return x.reshape(self.num_heads * batch, length, self.head_size)

    def _pos_heads(self, x):  # [R, heads * d] -> [heads, R, d]
        return x.view(x.shape[0], self.num_heads, self.head_size).transpose(0, 1)

    def _pos_query(self, rel):
        if not self.share_att_key:
            return self.pos_query_proj(rel)
        # The fork's position path sees the base query weight only, never the LoRA delta.
        weight = self.query_proj.weight
        if getattr(self.query_proj, "merged", False):  # after an explicit lora.merge_lora: take the delta out again
            q = self.query_proj
            weight = weight - (q.lora_B @ q.lora_A) * q.scaling
        return F.linear(rel, weight, self.query_proj.bias)

    def _pos_key(self, rel):
        return self.key_proj(rel) if self.share_att_key else self.pos_key_proj(rel)

    def position_bias(self, query, key, rel_embeddings, positions):
        """c2p + p2c for query/key [heads * B, L, d] as a new [heads * B, L, L] tensor, already divided by the
        attention scale (query arrives scaled). Each head's B * L rows meet its R position rows in one product."""
        length = query.shape[-2]
        if positions.skew:
            rel = self.pos_dropout(rel_embeddings)[positions.index]  # one row per offset
        else:
            rel = self.pos_dropout(rel_embeddings[positions.lo:positions.hi])

        def per_head_product(x, pos):  # [heads * B, L, d] x [heads, R, d] -> [heads * B, L, R]
            return torch.bmm(x.view(self.num_heads, -1, x.shape[-1]), pos.transpose(1, 2)).view(x.shape[0], length, -1)

        bias = None
        if "c2p" in self.pos_att_type:
            c2p = per_head_product(query, self._pos_heads(self._pos_key(rel)))
            if positions.skew:  # columns ordered by m = j - i + L - 1
                bias = _skew(c2p, length).contiguous()
            else:
                bias = c2p.gather(-1, positions.index.expand(c2p.shape[0], -1, -1))
        if "p2c" in self.pos_att_type:
            pos_query = self._pos_heads(self._pos_query(rel)) * self.inv_scale
            if positions.skew:  # p2c[i, j] = k_j . pq[row(i - j)]: reversed offsets, skewed, transposed
                p2c = _skew(per_head_product(key, pos_query.flip(1)), length).transpose(-1, -2)
            else:  # p2c[i, j] = k_j . pq[index[i, j]]: one gather over each flattened [L(key), R] table
                p2c = per_head_product(key, pos_query).flatten(-2)
                p2c = p2c.gather(-1, positions.flat_index.expand(p2c.shape[0], -1)).view(-1, length, length)
            bias = p2c.contiguous() if bias is None else bias.add_(p2c)
        return bias

    def forward(self, hidden_states, key_mask, query_mask, positions=None, rel_embeddings=None,
                output_attentions=False, packing=None):
        # packed tokens ([tokens, hidden], see transformers.packing) go back to [B, L] for attention only
        padded = (lambda x: x) if packing is None else packing.unpack
        query, key, value = (padded(proj(hidden_states)) for proj in (self.query_proj, self.key_proj, self.value_proj))
        batch, length = query.shape[:2]
        query = self._heads(query) * self.inv_scale  # [heads * B, L, d]
        key, value = self._heads(key), self._heads(value)

        if self.relative_attention and self.pos_att_type:  # the content score accumulates into the new bias
            scores = self.position_bias(query, key, rel_embeddings, positions).baddbmm_(query, key.transpose(1, 2))
        else:
            scores = torch.bmm(query, key.transpose(1, 2))
        # Masked keys get the most negative score; rows with no visible key are zeroed below (4.4.2's XSoftmax).
        # Outside autograd: masked keys end with probability exactly 0, so the softmax gradient there is 0 already.
        # (The view is taken inside no_grad so autograd does not replay it as an as_strided in the backward.)
        shape = (self.num_heads, batch, length, length)
        with torch.no_grad():  # masks are [B, 1, 1 or L, L]: batch to the second axis to match the head-major scores
            scores.view(shape).masked_fill_(~key_mask.transpose(0, 1), torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores, dim=-1)
        context = torch.bmm(self.dropout(probs), value).view(self.num_heads, batch, length, self.head_size)
        context = (context * query_mask.transpose(0, 1)).permute(1, 2, 0, 3).flatten(-2)  # [B, L, heads * d]
        if packing is not None:
            context = packing.pack(context)
        if not output_attentions:
            return context, None
        return context, probs.view(shape).transpose(0, 1) * query_mask


class DebertaV2SelfOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.adapter = attention_adapter(config)  # houlsby only

    def forward(self, hidden_states, input_tensor, packing=None):
        hidden = adapt(self.adapter, dropout(self.dropout, self.dense(hidden_states), packing), input_tensor,
                       self.LayerNorm)
        return self.LayerNorm(hidden + input_tensor)


class DebertaV2Attention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self = DisentangledSelfAttention(config)
        self.output = DebertaV2SelfOutput(config)

    def forward(self, hidden_states, key_mask, query_mask, positions, rel_embeddings, output_attentions=False,
                packing=None):
        context, probs = self.self(hidden_states, key_mask, query_mask, positions, rel_embeddings, output_attentions,
                                   packing)
        return self.output(context, hidden_states, packing), probs


class DebertaV2Intermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = get_activation(config.hidden_act)

    def forward(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))


class DebertaV2Output(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.adapter = ffn_adapter(config)  # houlsby and pfeiffer

    def forward(self, hidden_states, input_tensor, packing=None):
        hidden = adapt(self.adapter, dropout(self.dropout, self.dense(hidden_states), packing), input_tensor,
                       self.LayerNorm)
        return self.LayerNorm(hidden + input_tensor)


class DebertaV2Layer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attention = DebertaV2Attention(config)
        self.intermediate = DebertaV2Intermediate(config)
        self.output = DebertaV2Output(config)

    def forward(self, hidden_states, key_mask, query_mask, positions, rel_embeddings, output_attentions=False,
                packing=None):
        attention_output, probs = self.attention(hidden_states, key_mask, query_mask, positions, rel_embeddings,
                                                 output_attentions, packing)
        return self.output(self.intermediate(attention_output), attention_output, packing), probs


class ConvLayer(nn.Module):
    """Convolution over the embeddings, added to the first layer's output (deberta-v2-xlarge/xxlarge)."""

    def __init__(self, config):
        super().__init__()
        kernel_size = getattr(config, "conv_kernel_size", 3)
        self.conv = nn.Conv1d(config.hidden_size, config.hidden_size, kernel_size, padding=(kernel_size - 1) // 2,
                              groups=getattr(config, "conv_groups", 1))
        self.conv_act = get_activation(getattr(config, "conv_act", "tanh"))
        self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, residual_states, input_mask):
        mask = input_mask.unsqueeze(-1).to(hidden_states.dtype)
        out = self.conv(hidden_states.transpose(1, 2)).transpose(1, 2) * mask
        out = self.conv_act(self.dropout(out))
        return self.LayerNorm(residual_states + out) * mask


class DebertaV2Encoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList(DebertaV2Layer(config) for _ in range(config.num_hidden_layers))
        self.relative_attention = getattr(config, "relative_attention", False)
        if self.relative_attention:
            # Distances are clipped at max_relative_positions (non-positive: the model's maximum length), or
            # log-bucketed into position_buckets; the table holds one row per signed distance (or bucket).
            limit = getattr(config, "max_relative_positions", -1)
            self.max_relative_positions = limit if limit >= 1 else config.max_position_embeddings
            self.position_buckets = getattr(config, "position_buckets", -1)
            self.span = max(self.position_buckets, 0) or self.max_relative_positions
            self.rel_embeddings = nn.Embedding(2 * self.span, config.hidden_size)
        self.norm_rel_ebd = [x.strip() for x in getattr(config, "norm_rel_ebd", "none").lower().split("|")]
        if "layer_norm" in self.norm_rel_ebd:
            self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps, elementwise_affine=True)
        self.conv = ConvLayer(config) if getattr(config, "conv_kernel_size", 0) > 0 else None
        self._positions = {}

    def get_rel_embedding(self):
        if not self.relative_attention:
            return None
        rel = self.rel_embeddings.weight
        return self.LayerNorm(rel) if "layer_norm" in self.norm_rel_ebd else rel

    def relative_positions(self, length, device):
        key = (length, str(device))
        if key not in self._positions:
            self._positions[key] = RelativePositions(length, self.span, self.position_buckets,
                                                     self.max_relative_positions, device)
        return self._positions[key]

    def forward(self, hidden_states, attention_mask, output_hidden_states=False, output_attentions=False,
                packing=None):
        """packing (a transformers.packing.PackedTokens; not with the conv layer, which mixes neighbours) runs the
        layers on the kept tokens only; the other rows of last_hidden_state are then zeros."""
        if attention_mask.dim() == 2:  # [B, L] -> query row mask and key mask
            input_mask = attention_mask.bool()
            key_mask = input_mask[:, None, None, :]
            query_mask = input_mask[:, None, :, None]
        else:  # [B, L, L] pairwise mask
            key_mask = attention_mask.bool()[:, None]
            query_mask = key_mask.any(-1, keepdim=True)
            input_mask = query_mask[:, 0, :, 0]
        query_mask = query_mask.to(hidden_states.dtype)
        positions = rel_embeddings = None
        if self.relative_attention:
            positions = self.relative_positions(hidden_states.shape[1], hidden_states.device)
            rel_embeddings = self.get_rel_embedding()

        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        output = hidden_states if packing is None else packing.pack(hidden_states)
        for i, layer in enumerate(self.layer):
            output, probs = layer(output, key_mask, query_mask, positions, rel_embeddings, output_attentions, packing)
            if i == 0 and self.conv is not None:
                output = self.conv(hidden_states, output, input_mask)
            if output_hidden_states:
                all_hidden = all_hidden + (output,)
            if output_attentions:
                all_attentions = all_attentions + (probs,)
        if packing is not None:
            output = packing.unpack(output)
        return BaseModelOutput(last_hidden_state=output, hidden_states=all_hidden, attentions=all_attentions)


class DebertaV2PreTrainedModel(PreTrainedModel):
    config_class = DebertaV2Config
    base_model_prefix = "deberta"
    # 4.4.2 checkpoints store the position_ids buffer; MLM checkpoints carry prediction heads.
    _keys_to_ignore_on_load_missing = [r"position_ids"]
    _keys_to_ignore_on_load_unexpected = [r"position_ids", r"position_embeddings", r"lm_predictions",
                                          r"mask_predictions", r"^cls\."]

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, nn.Linear) and hasattr(module, "lora_A"):
            # the fork re-draws LoRA here: A ~ N(0, initializer_range) right after W, and B = 0 so training starts at W
            module.lora_A.data.normal_(mean=0.0, std=self.config.initializer_range)
            module.lora_B.data.zero_()


class DebertaV2Model(DebertaV2PreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embeddings = DebertaV2Embeddings(config)
        self.encoder = DebertaV2Encoder(config)
        self.init_weights()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, packing=None):
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = (self.config.output_hidden_states if output_hidden_states is None
                                else output_hidden_states)
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:-1]
        device = input_ids.device if input_ids is not None else inputs_embeds.device
        if attention_mask is None:
            attention_mask = torch.ones(shape, dtype=torch.long, device=device)
        if token_type_ids is None:
            token_type_ids = torch.zeros(shape, dtype=torch.long, device=device)
        input_mask = attention_mask if attention_mask.dim() == 2 else attention_mask.sum(-2) > 0
        embeddings = self.embeddings(input_ids, token_type_ids, position_ids, input_mask, inputs_embeds)
        out = self.encoder(embeddings, attention_mask, output_hidden_states, output_attentions, packing)
        if not return_dict:
            return tuple(v for v in (out.last_hidden_state, out.hidden_states, out.attentions) if v is not None)
        return out


class ContextPooler(nn.Module):
    """Dropout, dense and activation on the first token's state."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.pooler_hidden_size, config.pooler_hidden_size)
        self.dropout = Dropout(config.pooler_dropout)
        self.act = get_activation(config.pooler_hidden_act)
        self.output_dim = config.hidden_size

    def forward(self, hidden_states):
        return self.act(self.dense(self.dropout(hidden_states[:, 0])))


def _special_id(config, name, default):
    value = getattr(config, name, None)
    return default if value is None else value


class DebertaV2ForSequenceClassification(DebertaV2PreTrainedModel):
    # AdapterHub's head (pytorch_model_head.bin, heads.<name>.<i>.*): layer 1 is the pooler's dense, layer 4 the output
    adapterhub_head_layers = {"1": "pooler.dense", "4": "classifier"}

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.reg_loss_wgt = getattr(config, "reg_loss_wgt", 0.0) or 0.0
        self.masking_prob = getattr(config, "masking_prob", 0.0) or 0.0
        self.cls_token_id = _special_id(config, "cls_token_id", 1)
        self.sep_token_id = _special_id(config, "sep_token_id", 2)
        self.unk_token_id = _special_id(config, "unk_token_id", 3)

        self.deberta = DebertaV2Model(config)
        self.pooler = ContextPooler(config)
        self.classifier = nn.Linear(self.pooler.output_dim, config.num_labels)
        cls_dropout = getattr(config, "cls_dropout", None)
        self.dropout = Dropout(config.hidden_dropout_prob if cls_dropout is None else cls_dropout)
        self.pack_tokens = True  # run on real tokens only (transformers.packing); False: the padded computation
        self.init_weights()

    def cutoff_inputs(self, input_ids, attention_mask):
        """Cutoff: every token that is not [CLS], [SEP] or padding becomes [UNK] with probability masking_prob."""
        drop = torch.bernoulli(torch.full(input_ids.shape, self.masking_prob, device=input_ids.device)).bool()
        drop &= (input_ids != self.cls_token_id) & (input_ids != self.sep_token_id)
        if attention_mask is not None:
            drop &= attention_mask.bool() if attention_mask.dim() == 2 else attention_mask.sum(-2) > 0
        return input_ids.masked_fill(drop, self.unk_token_id)

    def _logits(self, outputs):
        return self.classifier(self.dropout(self.pooler(outputs[0])))

    def _loss(self, logits, labels):
        """Single-pass loss as in 4.4.2: MSE for one label, CE over rows with label >= 0, soft-label CE for 2-D."""
        if self.num_labels == 1:
            return F.mse_loss(logits.view(-1), labels.view(-1).to(logits.dtype))
        if labels.dim() == 1 or labels.size(-1) == 1:
            keep = labels.view(-1) >= 0
            if not keep.any():
                return logits.new_zeros(())
            return F.cross_entropy(logits[keep].float(), labels.view(-1)[keep].long())
        return -(F.log_softmax(logits, -1) * labels).sum(-1).mean()

    def _rdrop_loss(self, logits1, logits2, labels):
        mean = (logits1 + logits2) / 2.0
        if self.num_labels == 1:
            consistency = F.mse_loss(logits1, mean) + F.mse_loss(logits2, mean)
            return self._loss(logits1, labels) + self._loss(logits2, labels) + 0.5 * self.reg_loss_wgt * consistency
        if labels.dim() == 1 or labels.size(-1) == 1:
            keep = labels.view(-1) >= 0
            if not keep.any():
                return logits1.new_zeros(())
            logits1, logits2, mean, labels = logits1[keep], logits2[keep], mean[keep], labels.view(-1)[keep]
        target = F.softmax(mean, dim=-1)
        # the fork's F.kl_div(..., reduction="mean"): summed KL over batch x labels divided by that element count
        consistency = (F.kl_div(F.log_softmax(logits1, dim=-1), target, reduction="sum")
                       + F.kl_div(F.log_softmax(logits2, dim=-1), target, reduction="sum")) / target.numel()
        return self._loss(logits1, labels) + self._loss(logits2, labels) + 0.5 * self.reg_loss_wgt * consistency

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        cfg = self.config
        return_dict = cfg.use_return_dict if return_dict is None else return_dict
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        packing = packing_for(self, attention_mask, output_attentions, output_hidden_states,
                              self.deberta.encoder.conv is not None)
        kwargs = dict(attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
                      output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                      return_dict=True, packing=packing)
        outputs = self.deberta(input_ids, inputs_embeds=inputs_embeds, **kwargs)
        logits = self._logits(outputs)

        loss = None
        if labels is not None and self.training and self.reg_loss_wgt > 0:
            second_ids = input_ids
            if self.masking_prob > 0:
                if input_ids is None:
                    raise ValueError("masking_prob > 0 (Cutoff) needs input_ids, not inputs_embeds")
                second_ids = self.cutoff_inputs(input_ids, attention_mask)
            logits2 = self._logits(self.deberta(second_ids, inputs_embeds=inputs_embeds, **kwargs))
            loss = self._rdrop_loss(logits, logits2, labels)
        elif labels is not None:
            loss = self._loss(logits, labels)

        if not return_dict:
            output = (logits,) + tuple(v for v in (outputs.hidden_states, outputs.attentions) if v is not None)
            return (loss,) + output if loss is not None else output
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                        attentions=outputs.attentions)

DEBERTA_V2_PRETRAINED_MODEL_ARCHIVE_LIST = ["microsoft/deberta-v2-xlarge", "microsoft/deberta-v2-xxlarge",
                                            "microsoft/deberta-v2-xlarge-mnli", "microsoft/deberta-v2-xxlarge-mnli"]
