"""`FlashCoreAttention`: an `nn.MultiheadAttention` replacement running on flashcore.

Same call (`forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
average_attn_weights=True, is_causal=False)`), same outputs `(attn_output, attn_weights)` and the same
`state_dict` keys, so an `nn.MultiheadAttention`'s weights load into it and give the same outputs:
`in_proj_weight`, `in_proj_bias`, `out_proj.weight`, `out_proj.bias` when kdim == vdim == embed_dim,
else `q_proj_weight`, `k_proj_weight`, `v_proj_weight` (+ `in_proj_bias`, `out_proj.*`).

Differences, on purpose:
- `batch_first=True` by default (MultiheadAttention defaults to False: pass it explicitly to match);
- `num_kv_heads` < `num_heads` gives grouped-query attention: the k and v projections produce
  `num_kv_heads` heads (the packed `in_proj_weight` is then [E + 2·Hkv·E/H, E]);
- `causal=True` makes every call causal (top-left, like `is_causal`), with or without `attn_mask`;
  `is_causal=True` needs no `attn_mask` (MultiheadAttention requires one as a hint and ignores it).

Which path a call takes: flashcore's kernel when there is no `attn_mask`, no `key_padding_mask`,
`need_weights=False`, no active dropout (`dropout > 0` in training mode) and the inputs are ones
`flashcore.attention` takes (head dim embed_dim/num_heads a multiple of 16 in [16, 256]; fp16/bf16
on CUDA). Otherwise the call is
computed by plain PyTorch math in this module (the *fallback*): masks are applied as
MultiheadAttention applies them (bool True = masked out; float = added), and with
`need_weights=True` the attention weights are returned like MultiheadAttention's, averaged over heads
unless `average_attn_weights=False`. Note that MultiheadAttention's default is `need_weights=True`:
call with `need_weights=False` to get the fused kernel.
"""

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _ops
from .functional import attention, supported_head_dim


class FlashCoreAttention(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        *,
        batch_first: bool = True,
        num_kv_heads: Optional[int] = None,
        causal: bool = False,
        kdim: Optional[int] = None,
        vdim: Optional[int] = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads != 0:
            raise ValueError(
                f"invalid argument `num_heads`: embed_dim ({embed_dim}) must be a positive multiple of num_heads "
                f"({num_heads})"
            )
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if num_kv_heads <= 0 or num_heads % num_kv_heads != 0:
            raise ValueError(
                f"invalid argument `num_kv_heads`: num_heads ({num_heads}) must be a multiple of it, got {num_kv_heads}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"invalid argument `dropout`: expected 0 <= dropout < 1, got {dropout}")
        f = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = embed_dim // num_heads
        self.kv_dim = num_kv_heads * self.head_dim
        self.dropout = dropout
        self.batch_first = batch_first
        self.causal = causal
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(embed_dim + 2 * self.kv_dim, embed_dim, **f))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim, **f))
            self.k_proj_weight = nn.Parameter(torch.empty(self.kv_dim, self.kdim, **f))
            self.v_proj_weight = nn.Parameter(torch.empty(self.kv_dim, self.vdim, **f))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(embed_dim + 2 * self.kv_dim, **f))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **f)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # MultiheadAttention's initialisation.
        if self._qkv_same_embed_dim:
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            nn.init.xavier_uniform_(self.q_proj_weight)
            nn.init.xavier_uniform_(self.k_proj_weight)
            nn.init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.constant_(self.in_proj_bias, 0.0)
            nn.init.constant_(self.out_proj.bias, 0.0)

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        e, kv = self.embed_dim, self.kv_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e : e + kv], b[e + kv :])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            wq, wk, wv = w[:e], w[e : e + kv], w[e + kv :]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Optional[Tensor] = None,
        need_weights: bool = True,
        attn_mask: Optional[Tensor] = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> Tuple[Tensor, Optional[Tensor]]:
        unbatched = query.dim() == 2
        if query.dim() not in (2, 3):
            raise ValueError(f"invalid argument `query`: expected 2-d or 3-d input, got {query.dim()} dims")
        if key.dim() != query.dim() or value.dim() != query.dim():
            raise ValueError("invalid argument `key`: query, key and value must have the same number of dims")
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        bsz, tgt, _ = query.shape
        src = key.shape[1]
        q, k, v = self._project(query, key, value)
        h, hkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        # Heads split in the BSHD layout and handed over as it is: flashcore reads any strides.
        q = q.view(bsz, tgt, h, d)
        k = k.view(bsz, src, hkv, d)
        v = v.view(bsz, src, hkv, d)
        causal = self.causal or is_causal
        dropout = self.dropout if self.training else 0.0
        weights = None
        fused_ok = supported_head_dim(d) and (q.device.type != "cuda" or q.dtype in _ops.CUDA_DTYPES)
        if fused_ok and key_padding_mask is None and attn_mask is None and not need_weights and dropout == 0.0:
            out = attention(q, k, v, causal=causal, layout="bshd")
        else:
            out, weights = self._fallback(q, k, v, key_padding_mask, attn_mask, causal, dropout)
            if weights is not None and need_weights and average_attn_weights:
                weights = weights.mean(dim=1)
            if not need_weights:
                weights = None
        out = self.out_proj(out.reshape(bsz, tgt, self.embed_dim))
        if unbatched:
            out = out.squeeze(0)
            weights = weights.squeeze(0) if weights is not None else None
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _fallback(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        key_padding_mask: Optional[Tensor],
        attn_mask: Optional[Tensor],
        causal: bool,
        dropout: float,
    ) -> Tuple[Tensor, Tensor]:
        """MultiheadAttention's math on [B, S, H, D] inputs; returns the output and per-head weights."""
        bsz, tgt, h, d = q.shape
        src, g = k.shape[1], h // self.num_kv_heads
        qh = q.transpose(1, 2)
        kh = k.transpose(1, 2).repeat_interleave(g, dim=1)
        vh = v.transpose(1, 2).repeat_interleave(g, dim=1)
        scores = torch.matmul(qh, kh.transpose(-1, -2)) / math.sqrt(d)
        bias = torch.zeros((bsz, 1, tgt, src), dtype=scores.dtype, device=scores.device)
        if causal:
            bias = bias.masked_fill(torch.ones(tgt, src, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
        elif attn_mask is not None:
            if attn_mask.dim() == 3:  # [B·H, tgt, src]
                attn_mask = attn_mask.view(bsz, h, tgt, src)
            if attn_mask.dtype == torch.bool:
                bias = bias.masked_fill(attn_mask, float("-inf"))
            else:
                bias = bias + attn_mask.to(scores.dtype)
        if key_padding_mask is not None:
            kpm = key_padding_mask.view(bsz, 1, 1, src)
            if kpm.dtype == torch.bool:
                bias = bias.masked_fill(kpm, float("-inf"))
            else:
                bias = bias + kpm.to(scores.dtype)
        p = torch.softmax(scores + bias, dim=-1)
        if dropout > 0.0:
            p = F.dropout(p, p=dropout)
        out = torch.matmul(p, vh).transpose(1, 2)
        return out, p
