"""Hugging Face transformers integration: `register_transformers()` adds the attention
implementation "flashcore", usable as `from_config(cfg, attn_implementation=name)` where `name` is
what it returns.

transformers 5 reads any implementation name containing "flash" as a FlashAttention kernel to load
(`is_flash_attention_requested`), so there the name "flashcore" cannot work; register_transformers()
then also registers the alias "fcore" and returns that. Older versions use "flashcore" itself.

Masks are built by transformers' SDPA mask function, which returns no mask when a batch has no
padding (the causal pattern is then flashcore's `causal=True`). Attention sinks (`s_aux`, gpt-oss)
and logit softcapping (`softcap`, Gemma 2) go to flashcore's `sinks=` / `softcap=`. Calls carrying
a mask (padding, or a sliding window longer than the sequence), attention dropout, a position bias,
or inputs flashcore cannot take fall back, counted under `flashcore.fallback_counts()`: to
transformers' SDPA implementation, or, with sinks or a softcap (which SDPA cannot express), to
the same math in eager torch.
"""

from typing import Any, Optional, Tuple

import torch
from torch import Tensor

from . import patch
from .functional import attention

NAME = "flashcore"
ALIAS = "fcore"  # for transformers versions that treat "flash*" names as FlashAttention kernels


def flashcore_attention_forward(
    module: torch.nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Optional[Tensor],
    dropout: float = 0.0,
    scaling: Optional[float] = None,
    is_causal: Optional[bool] = None,
    **kwargs: Any,
) -> Tuple[Tensor, None]:
    """transformers' attention-function signature: q [B, H, S, D], k/v [B, Hkv, Sk, D]; returns
    ([B, S, H, D] contiguous, None), as its SDPA implementation does."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    # transformers' rule: causal only without an explicit mask and beyond one query; top-left
    # alignment (its empty-static-cache prefill has extra, never-visible keys after the queries).
    causal = bool(query.shape[2] > 1 and attention_mask is None and causal)
    sinks, softcap = kwargs.get("s_aux"), kwargs.get("softcap")
    if attention_mask is not None or kwargs.get("position_bias") is not None:
        reason: Optional[str] = "attn_mask"
    else:
        reason, _ = patch.fallback_reason(query, key, value, None, dropout, causal, scaling, enable_gqa=True)
    if reason is not None:
        patch._record(reason)
        if sinks is not None or softcap is not None:
            return _eager_attention(query, key, value, attention_mask, dropout if module.training else 0.0,
                                    scaling, sinks, softcap)
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    out = attention(query, key, value, causal=causal, scale=scaling, sinks=sinks, softcap=softcap)
    return out.transpose(1, 2).contiguous(), None


def _eager_attention(
    query: Tensor, key: Tensor, value: Tensor, attention_mask: Optional[Tensor], dropout: float,
    scaling: Optional[float], sinks: Optional[Tensor], softcap: Optional[float],
) -> Tuple[Tensor, None]:
    """The fallback with sinks or a softcap: softmax(softcap(scale·q kᵀ) + mask, with one more
    column per head for the sink that is dropped afterwards) v, in torch, as transformers' eager
    implementations compute it. q [B, H, S, D], k/v [B, Hkv, Sk, D]; returns [B, S, H, D]."""
    g = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(g, 1), value.repeat_interleave(g, 1)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    logits = torch.matmul(query, key.transpose(2, 3)) * scale
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    if attention_mask is not None:
        mask = attention_mask[:, :, :, : key.shape[2]]
        logits = logits.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else logits + mask
    if sinks is not None:
        col = sinks.to(logits.dtype).reshape(1, -1, 1, 1).expand(logits.shape[0], -1, logits.shape[2], 1)
        logits = torch.cat([logits, col], -1)
    probs = torch.softmax(logits, -1, dtype=torch.promote_types(logits.dtype, torch.float32)).to(query.dtype)
    if sinks is not None:
        probs = probs[..., :-1]
    probs = torch.nn.functional.dropout(probs, p=dropout)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


def _taken_for_flash_attention(name: str) -> bool:
    try:
        from transformers.utils.generic import is_flash_attention_requested
    except ImportError:
        return False
    return bool(is_flash_attention_requested(requested_attention_implementation=name))


def register_transformers(name: str = NAME) -> str:
    """Register flashcore with transformers' AttentionInterface (and its SDPA mask function under the
    same name, so padded batches get a mask and fall back). Returns the name to pass as
    `attn_implementation` ("flashcore", or "fcore" where transformers reserves "flash*" names).
    Raises ImportError without transformers."""
    try:
        from transformers import AttentionInterface
    except ImportError as e:
        raise ImportError("flashcore.register_transformers() needs the `transformers` package") from e
    names = [name] + ([ALIAS] if _taken_for_flash_attention(name) else [])
    for n in names:
        AttentionInterface.register(n, flashcore_attention_forward)
    try:
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    except ImportError:  # transformers without a mask registry builds SDPA-style masks for everyone
        return names[-1]
    for n in names:
        AttentionMaskInterface.register(n, sdpa_mask)
    return names[-1]
