"""`flashcore.attention`: argument checks, layout and mask conventions, then the custom op."""

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from . import _ops  # noqa: F401  (registers torch.ops.flashcore.*)
from ._native import UnsupportedError

Causal = Union[bool, str, None]
# Each accepted spelling of `causal` -> the op's mask name.
_CAUSAL = {
    False: "none",
    None: "none",
    "none": "none",
    True: "causal",
    "top_left": "causal",
    "bottom_right": "causal_br",
}


def _invalid(arg: str, why: str, exc: type = ValueError) -> Exception:
    e = exc(f"invalid argument `{arg}`: {why}")
    e.arg = arg  # the same attribute the native errors carry
    return e


def supported_head_dim(d: int) -> bool:
    """The CUDA kernel's head dims (mirrors `_native.supported_head_dim`; a test keeps them equal).
    Written in Python so torch.compile traces it without calling into the extension."""
    return d % 16 == 0 and 16 <= d <= 256


def mask_name(causal: Causal) -> str:
    if isinstance(causal, (bool, str)) or causal is None:
        name = _CAUSAL.get(causal)
        if name is not None:
            return name
    raise _invalid("causal", f"expected False, True (top-left), 'top_left' or 'bottom_right', got {causal!r}")


def check_inputs(q: Tensor, k: Tensor, v: Tensor, layout: str) -> None:
    """Every rule flashcore.attention enforces before launching; raises naming the argument."""
    if layout not in ("bhsd", "bshd"):
        raise _invalid("layout", f"expected 'bhsd' or 'bshd', got {layout!r}")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise _invalid(name, f"expected a torch.Tensor, got {type(t).__name__}", TypeError)
        if t.dim() != 4:
            raise _invalid(name, f"expected a 4-d tensor ({layout.upper()}), got {t.dim()} dims")
        if t.is_nested or t.layout != torch.strided:
            raise _invalid(name, "expected a dense (strided) tensor")
        if t.device != q.device:
            raise _invalid(name, f"is on {t.device}, q is on {q.device}")
        if t.dtype != q.dtype:
            raise _invalid(name, f"dtype {t.dtype} differs from q's {q.dtype}", TypeError)
        if t.shape[-1] > 1 and t.stride(-1) != 1:
            raise _invalid(name, f"the head dim must be contiguous (stride 1), got stride {t.stride(-1)}")
    dev = q.device.type
    if dev == "cuda":
        if q.dtype not in _ops.CUDA_DTYPES:
            raise _invalid("q", f"dtype {q.dtype} is not supported on CUDA (use float16 or bfloat16)", TypeError)
    elif dev in ("cpu", "meta"):
        if q.dtype not in _ops.CPU_DTYPES:
            raise _invalid("q", f"dtype {q.dtype} is not supported (float32/64, float16, bfloat16)", TypeError)
    else:
        raise _invalid("q", f"device {q.device} is not supported (cuda or cpu)")
    s_dim = 2 if layout == "bhsd" else 1
    h_dim = 3 - s_dim
    b, h, d = q.shape[0], q.shape[h_dim], q.shape[3]
    if k.shape[0] != b:
        raise _invalid("k", f"batch {k.shape[0]} differs from q's batch {b}")
    if k.shape[3] != d:
        raise _invalid("k", f"head dim {k.shape[3]} differs from q's head dim {d}")
    if v.shape != k.shape:
        raise _invalid("v", f"shape {tuple(v.shape)} differs from k's shape {tuple(k.shape)}")
    hkv = k.shape[h_dim]
    if hkv == 0 or h % hkv != 0:
        raise _invalid("k", f"query heads ({h}) must be a multiple of key/value heads ({hkv})")
    if not supported_head_dim(d):
        raise _invalid("q", f"head dim {d} is not supported: multiples of 16 from 16 to 256", UnsupportedError)


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: Causal = False,
    scale: Union[float, None] = None,
    return_lse: bool = False,
    layout: str = "bhsd",
    deterministic: bool = False,
    q_descale: Optional[Tensor] = None,
    k_descale: Optional[Tensor] = None,
    v_descale: Optional[Tensor] = None,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Exact softmax attention, softmax(scale · q kᵀ) v, with gradients for q, k and v.

    Args:
        q: [B, H, Sq, D] (layout "bhsd") or [B, Sq, H, D] (layout "bshd").
        k, v: [B, Hkv, Sk, D] (or [B, Sk, Hkv, D]); H must be a multiple of Hkv (GQA/MQA).
        causal: False; True or "top_left" (query i sees keys j <= i, like SDPA's `is_causal`);
            "bottom_right" (j <= i + Sk - Sq, FlashAttention's convention: the last query sees every
            key; rows that see no key give 0 and LSE -inf).
        scale: softmax scale, default 1/sqrt(D).
        return_lse: also return the log-sum-exp of each row, [B, H, Sq], fp32 (fp64 for fp64 input).
        layout: "bhsd" or "bshd", for q, k, v and the output alike.
        deterministic: make the CUDA backward bitwise reproducible (dQ summed over the key blocks
            in a fixed order instead of by atomic adds: slower). Also on whenever
            `torch.use_deterministic_algorithms(True)` is in effect. The forward is always
            deterministic.

    CUDA tensors (fp16/bf16) run the flashcore kernels on torch's current stream; any strides with
    a contiguous head dim are used as they are (16-byte aligned rows). CPU tensors (fp32/fp64/fp16/
    bf16) run the float64 reference and are cast back. The output takes q's layout.

    Gradients: on CUDA the native backward kernels compute dq, dk, dv from the saved output and
    LSE (O(N) memory; for GQA/MQA, dk and dv are summed over each group's query heads in the
    kernel), each laid out like its input. Head dims above 128, and a gradient flowing into the
    returned LSE, use PyTorch math from the saved LSE instead (same results, slower; warned once).
    The LSE is only computed when a gradient may be needed or `return_lse` asks for it.

    FP8: torch.float8_e4m3fn q, k, v (CUDA, Hopper, head dims 64/128/256, forward only) run the FP8
    kernel with fp32 descales q_descale, k_descale, v_descale (None = 1; shapes [1], [B, H] or, for
    q and k, [B, H, ceil(S / 128)]; see `flashcore.quantize_fp8`); the output is bf16
    (`flashcore.attention_fp8` takes `out_dtype`).
    """
    if isinstance(q, Tensor) and q.dtype == torch.float8_e4m3fn:
        from .fp8 import attention_fp8

        return attention_fp8(
            q, k, v, q_descale, k_descale, v_descale, causal=causal, scale=scale, return_lse=return_lse, layout=layout
        )
    for name, t in (("q_descale", q_descale), ("k_descale", k_descale), ("v_descale", v_descale)):
        if t is not None:
            raise _invalid(name, "descales go with float8_e4m3fn inputs only")
    check_inputs(q, k, v, layout)
    mask = mask_name(causal)
    if scale is None:
        scale = _ops.default_scale(q.shape[-1])
    elif not isinstance(scale, (int, float)) or isinstance(scale, bool):
        raise _invalid("scale", f"expected a float, got {type(scale).__name__}", TypeError)
    elif not (scale > 0 and scale < float("inf")):
        raise _invalid("scale", f"must be a positive finite number, got {scale}")
    if not isinstance(return_lse, bool):
        raise _invalid("return_lse", f"expected a bool, got {type(return_lse).__name__}", TypeError)
    if not isinstance(deterministic, bool):
        raise _invalid("deterministic", f"expected a bool, got {type(deterministic).__name__}", TypeError)
    deterministic = deterministic or torch.are_deterministic_algorithms_enabled()
    # The LSE is what the backward needs; an inference call that does not return it skips it.
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    if layout == "bshd":
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    out, lse = torch.ops.flashcore.fwd(
        q, k, v, mask, float(scale), keep_lse=return_lse or needs_grad, lse_grad=return_lse,
        deterministic=deterministic,
    )
    if layout == "bshd":
        out = out.transpose(1, 2)
    return (out, lse) if return_lse else out
