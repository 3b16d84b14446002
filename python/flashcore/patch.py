"""Route `torch.nn.functional.scaled_dot_product_attention` through flashcore.

`patch_pytorch()` replaces the function object in `torch.nn.functional`, which is where
`nn.MultiheadAttention` (through `F.multi_head_attention_forward`) and Hugging Face models look it up
at call time. The wrapper takes SDPA's full signature and serves each call it can; every other call
goes to the original function unchanged, with the reason counted (`fallback_counts()`) and logged at
DEBUG level on the `flashcore.patch` logger (`patch_pytorch(debug=True)` turns that logger on).
"""

import collections
import contextlib
import logging
from typing import Dict, Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from . import _ops
from .functional import attention, supported_head_dim

_log = logging.getLogger("flashcore.patch")
_ORIGINAL = None  # the SDPA function object found when patching, restored by unpatch_pytorch()
_COUNTS: "collections.Counter[str]" = collections.Counter()
_HANDLER: Optional[logging.Handler] = None
# patch_pytorch(fp8=True): bf16/fp16 CUDA calls that need no gradient run in FP8 (quantized per
# (batch, head) on the fly) on Hopper for head dims 64, 128, 256.
_FP8 = False

# Why a call went to the original SDPA. Each is tested in python/tests/test_patch.py.
REASONS = {
    "not_tensor": "an input is not a dense torch.Tensor (nested, sparse, a subclass...)",
    "attn_mask": "an explicit attn_mask (float bias or bool mask) was given",
    "dropout": "dropout_p > 0",
    "rank": "inputs are not 4-d [B, H, S, D]",
    "device": "inputs are on different devices, or on a device other than CUDA/CPU",
    "dtype": "inputs have different dtypes, or one the device path does not take (fp32 on CUDA)",
    "head_dim": "q, k, v head dims differ, or the head dim is not a multiple of 16 in [16, 256]",
    "shape": "batch sizes differ, k and v differ, or there are no keys",
    "gqa": "q and k/v head counts differ without enable_gqa=True, or do not divide",
    "stride": "the head dim is not contiguous",
    "alignment": "a CUDA tensor's pointer or strides are not 16-byte aligned",
    "scale": "scale is not a positive finite number",
}


def _causal_bias_mask(attn_mask: object) -> Optional[str]:
    """torch's CausalBias (torch.nn.attention.bias.causal_upper_left/lower_right) as a mask name."""
    try:
        from torch.nn.attention.bias import CausalBias, CausalVariant
    except ImportError:  # torch < 2.3
        return None
    if isinstance(attn_mask, CausalBias):
        return "causal" if attn_mask.variant == CausalVariant.UPPER_LEFT else "causal_br"
    return None


def fallback_reason(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Optional[Tensor] = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: Optional[float] = None,
    enable_gqa: bool = False,
) -> Tuple[Optional[str], str]:
    """(None, mask name) when flashcore serves this SDPA call, else (reason, "") with a key of REASONS."""
    mask = "causal" if is_causal else "none"
    if attn_mask is not None:
        bias = _causal_bias_mask(attn_mask)
        if bias is None or is_causal:
            return "attn_mask", ""
        mask = bias
    ts = (query, key, value)
    if not all(isinstance(t, Tensor) for t in ts) or any(t.is_nested or t.layout != torch.strided for t in ts):
        return "not_tensor", ""
    if dropout_p > 0.0:
        return "dropout", ""
    if any(t.dim() != 4 for t in ts):
        return "rank", ""
    dev = query.device
    if key.device != dev or value.device != dev or dev.type not in ("cuda", "cpu"):
        return "device", ""
    dtypes = _ops.CUDA_DTYPES if dev.type == "cuda" else _ops.CPU_DTYPES
    if key.dtype != query.dtype or value.dtype != query.dtype or query.dtype not in dtypes:
        return "dtype", ""
    d = query.shape[-1]
    if key.shape[-1] != d or value.shape[-1] != d or not supported_head_dim(d):
        return "head_dim", ""
    if key.shape != value.shape or key.shape[0] != query.shape[0] or key.shape[2] == 0:
        return "shape", ""
    h, hkv = query.shape[1], key.shape[1]
    if h != hkv and (not enable_gqa or hkv == 0 or h % hkv != 0):
        return "gqa", ""
    if any(t.shape[-1] > 1 and t.stride(-1) != 1 for t in ts):
        return "stride", ""
    if dev.type == "cuda" and not torch.compiler.is_compiling():
        # The kernel reads 16-byte vectors. (While compiling, tensors are fake and have no pointer.)
        for t in ts:
            if t.numel() and (t.data_ptr() % 16 or any(st % 8 for n, st in zip(t.shape[:3], t.stride()[:3]) if n > 1)):
                return "alignment", ""
    if scale is not None and not (0 < scale < float("inf")):
        return "scale", ""
    return None, mask


def _record(reason: str) -> None:
    if torch.compiler.is_compiling():
        return
    _COUNTS[reason] += 1
    if _log.isEnabledFor(logging.DEBUG):
        _log.debug("scaled_dot_product_attention falls back to PyTorch: %s (%s)", reason, REASONS[reason])


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Optional[Tensor] = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: Optional[float] = None,
    enable_gqa: bool = False,
) -> Tensor:
    """SDPA's signature and semantics; served by flashcore when it can, else by the original."""
    reason, mask = fallback_reason(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
    if reason is None:
        causal = {"none": False, "causal": True, "causal_br": "bottom_right"}[mask]
        if _FP8 and _fp8_serves(query, key, value):
            from .fp8 import attention_fp8, quantize_fp8

            (q8, qd), (k8, kd), (v8, vd) = (quantize_fp8(t, "head") for t in (query, key, value))
            return attention_fp8(q8, k8, v8, qd, kd, vd, causal=causal, scale=scale, out_dtype=query.dtype)
        return attention(query, key, value, causal=causal, scale=scale)
    _record(reason)
    kwargs = {"enable_gqa": True} if enable_gqa else {}  # torch < 2.5 has no enable_gqa
    return _original()(
        query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale, **kwargs
    )


def _fp8_serves(query: Tensor, key: Tensor, value: Tensor) -> bool:
    """The FP8 opt-in takes inference calls (no gradient) on Hopper at head dims 64, 128, 256."""
    if query.device.type != "cuda" or query.dtype not in (torch.bfloat16, torch.float16):
        return False
    if torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value)):
        return False
    return query.shape[-1] in (64, 128, 256) and torch.cuda.get_device_capability(query.device) == (9, 0)


def _original():
    return _ORIGINAL if _ORIGINAL is not None else F.scaled_dot_product_attention


def is_patched() -> bool:
    return F.scaled_dot_product_attention is scaled_dot_product_attention


def patch_pytorch(debug: bool = False, fp8: bool = False) -> None:
    """Send `F.scaled_dot_product_attention` calls to flashcore. Idempotent.

    With `debug=True`, each fallback to PyTorch is logged (logger `flashcore.patch`, DEBUG level,
    to stderr unless the application configured a handler). With `fp8=True` (off by default),
    bf16/fp16 calls that need no gradient run the FP8 kernel on Hopper (head dims 64, 128, 256):
    q, k, v are quantized per (batch, head) on the fly and the output keeps the input dtype; FP8's
    error is ~10x bf16's (README, "FP8").
    """
    global _ORIGINAL, _HANDLER, _FP8
    if not isinstance(fp8, bool):
        raise TypeError(f"invalid argument `fp8`: expected a bool, got {type(fp8).__name__}")
    _FP8 = fp8
    if debug:
        _log.setLevel(logging.DEBUG)
        if not _log.handlers and not logging.getLogger().handlers:
            _HANDLER = logging.StreamHandler()
            _log.addHandler(_HANDLER)
    if is_patched():
        return
    _ORIGINAL = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = scaled_dot_product_attention


def unpatch_pytorch() -> None:
    """Restore the exact SDPA object that patch_pytorch() replaced. Idempotent."""
    global _ORIGINAL, _HANDLER, _FP8
    _FP8 = False
    if not is_patched():
        return
    F.scaled_dot_product_attention = _ORIGINAL
    _ORIGINAL = None
    if _HANDLER is not None:
        _log.removeHandler(_HANDLER)
        _HANDLER = None
        _log.setLevel(logging.NOTSET)


@contextlib.contextmanager
def patched(debug: bool = False, fp8: bool = False) -> Iterator[None]:
    """`with flashcore.patched(): ...` patches for the block; leaves an outer patch in place."""
    was = is_patched()
    patch_pytorch(debug=debug, fp8=fp8)
    try:
        yield
    finally:
        if not was:
            unpatch_pytorch()


def fallback_counts() -> Dict[str, int]:
    """How many SDPA calls fell back to PyTorch, by reason, since the last reset."""
    return dict(_COUNTS)


def reset_fallback_counts() -> None:
    _COUNTS.clear()
