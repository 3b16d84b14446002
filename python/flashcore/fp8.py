"""FP8 (E4M3) attention forward on Hopper, and the helpers that feed it.

`quantize_fp8(x, granularity)` turns a bf16/fp16/fp32 tensor into (float8_e4m3fn tensor, fp32
descale) with x ~= x_fp8 * descale; `attention_fp8` (also reached through `flashcore.attention` with
float8_e4m3fn inputs) runs the FP8 kernel: both GEMMs in FP8 with fp32 accumulation, output in bf16
or fp16. `hadamard_qk` is incoherent processing: a random-sign Hadamard transform of q and k along
the head dim, which leaves q kᵀ unchanged and spreads outliers before quantization.

Descale shapes: "tensor" [1]; "head" [B, H] (k and v: [B, Hkv]); "block" [B, H, ceil(S / 128)]
(k and v: [B, Hkv, ceil(Sk / 128)], one factor per key block of the kernel). Forward only: inputs
that require grad are rejected.
"""

import math
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from . import _native, _ops

FP8 = torch.float8_e4m3fn
E4M3_MAX = 448.0
BLOCK_ROWS = 128
GRANULARITIES = ("tensor", "head", "block")


def _invalid(arg: str, why: str, exc: type = ValueError) -> Exception:
    e = exc(f"invalid argument `{arg}`: {why}")
    e.arg = arg
    return e


def _bhsd(x: Tensor, layout: str) -> Tensor:
    if layout not in ("bhsd", "bshd"):
        raise _invalid("layout", f"expected 'bhsd' or 'bshd', got {layout!r}")
    return x if layout == "bhsd" else x.transpose(1, 2)


def quantize_fp8(x: Tensor, granularity: str = "tensor", layout: str = "bhsd") -> Tuple[Tensor, Tensor]:
    """(x_fp8, descale): x in float8_e4m3fn (same shape and layout) and fp32 factors with
    x ~= x_fp8.float() * descale. Each group's largest magnitude maps to 448, e4m3's largest finite
    value. granularity: "tensor" (descale [1]), "head" ([B, H]) or "block" (one factor per 128 rows
    of each head: [B, H, ceil(S / 128)])."""
    if not isinstance(x, Tensor):
        raise _invalid("x", f"expected a torch.Tensor, got {type(x).__name__}", TypeError)
    if x.dim() != 4:
        raise _invalid("x", f"expected a 4-d tensor ({layout.upper()}), got {x.dim()} dims")
    if not x.is_floating_point() or x.dtype == FP8:
        raise _invalid("x", f"expected a floating-point tensor to quantize, got {x.dtype}", TypeError)
    if granularity not in GRANULARITIES:
        raise _invalid("granularity", f"expected one of {GRANULARITIES}, got {granularity!r}")
    xb = _bhsd(x, layout).float()
    b, h, s, d = xb.shape
    if granularity == "tensor":
        amax = xb.abs().amax().reshape(1)
        per_row = amax.reshape(1, 1, 1, 1)
    elif granularity == "head":
        amax = xb.abs().amax(dim=(2, 3))
        per_row = amax[:, :, None, None]
    else:
        nb = max(1, math.ceil(s / BLOCK_ROWS))
        padded = torch.nn.functional.pad(xb.abs(), (0, 0, 0, nb * BLOCK_ROWS - s))
        amax = padded.reshape(b, h, nb, BLOCK_ROWS * d).amax(dim=3)
        per_row = amax.repeat_interleave(BLOCK_ROWS, dim=2)[:, :, :s, None]
    descale = torch.where(amax > 0, amax / E4M3_MAX, torch.ones_like(amax)).float()
    scale_rows = torch.where(per_row > 0, per_row / E4M3_MAX, torch.ones_like(per_row))
    # Clamped: the division may land a hair above 448, which the cast would not saturate.
    q = (xb / scale_rows).clamp(-E4M3_MAX, E4M3_MAX).to(FP8)
    return (q if layout == "bhsd" else q.transpose(1, 2)), descale.contiguous()


def dequantize_fp8(x: Tensor, descale: Tensor, layout: str = "bhsd") -> Tensor:
    """x_fp8 * descale in fp32 (the values the FP8 kernel computes with)."""
    xb = _bhsd(x, layout).float()
    b, h, s, d = xb.shape
    g = _granularity("descale", descale, b, h, s)
    if g == "tensor":
        f = descale.reshape(1, 1, 1, 1)
    elif g == "head":
        f = descale[:, :, None, None]
    else:
        f = descale.repeat_interleave(BLOCK_ROWS, dim=2)[:, :, :s, None]
    out = xb * f.float()
    return out if layout == "bhsd" else out.transpose(1, 2)


def hadamard_qk(q: Tensor, k: Tensor, seed: int = 0, layout: str = "bhsd") -> Tuple[Tensor, Tensor]:
    """Incoherent processing: q and k times diag(random signs) · H / sqrt(D) along the head dim (H the
    Walsh-Hadamard matrix; D a power of two). q kᵀ is unchanged; an outlier is spread over all D
    entries, so per-tensor FP8 scales lose less. Returns fp32 tensors in the same layout."""
    d = q.shape[-1]
    if d & (d - 1) or k.shape[-1] != d:
        raise _invalid("q", f"head dim {d} must be a power of two, equal for q and k")
    gen = torch.Generator().manual_seed(seed)
    signs = (torch.randint(0, 2, (d,), generator=gen) * 2 - 1).to(q.device, torch.float32)

    def fwht(x: Tensor) -> Tensor:
        x = x.float() * signs
        shape = x.shape
        n = 1
        while n < d:
            x = x.reshape(-1, d // (2 * n), 2, n)
            x = torch.stack((x[:, :, 0] + x[:, :, 1], x[:, :, 0] - x[:, :, 1]), dim=2)
            n *= 2
        return x.reshape(shape) / math.sqrt(d)

    return fwht(q), fwht(k)


def _granularity(arg: str, t: Tensor, b: int, h: int, s: int) -> str:
    if t.numel() == 1:
        return "tensor"
    if tuple(t.shape) == (b, h):
        return "head"
    if tuple(t.shape) == (b, h, max(1, math.ceil(s / BLOCK_ROWS))):
        return "block"
    raise _invalid(
        arg, f"shape {tuple(t.shape)} is none of [1], [{b}, {h}] or [{b}, {h}, {max(1, math.ceil(s / BLOCK_ROWS))}]"
    )


def _descale(arg: str, t: Optional[Tensor], like: Tensor) -> Tuple[Tensor, str]:
    if t is None:
        t = torch.ones(1, device=like.device)
    if not isinstance(t, Tensor):
        raise _invalid(arg, f"expected a torch.Tensor of fp32 factors, got {type(t).__name__}", TypeError)
    if t.dtype != torch.float32:
        raise _invalid(arg, f"expected float32, got {t.dtype}", TypeError)
    if t.device != like.device:
        raise _invalid(arg, f"is on {t.device}, the inputs are on {like.device}")
    b, h, s, _ = like.shape
    g = _granularity(arg, t, b, h, s)
    return t.contiguous(), g


def attention_fp8(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    q_descale: Optional[Tensor] = None,
    k_descale: Optional[Tensor] = None,
    v_descale: Optional[Tensor] = None,
    *,
    causal: Union[bool, str] = False,
    scale: Optional[float] = None,
    return_lse: bool = False,
    layout: str = "bhsd",
    out_dtype: torch.dtype = torch.bfloat16,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """FP8 attention forward: softmax(scale · (q·dq)(k·dk)ᵀ)(v·dv) from float8_e4m3fn q, k, v and
    fp32 descales (None = 1), on CUDA (Hopper). Output in `out_dtype` (bf16 or fp16), q's layout."""
    from .functional import mask_name

    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise _invalid(name, f"expected a torch.Tensor, got {type(t).__name__}", TypeError)
        if t.dtype != FP8:
            raise _invalid(name, f"expected torch.float8_e4m3fn, got {t.dtype}", TypeError)
        if t.dim() != 4:
            raise _invalid(name, f"expected a 4-d tensor ({layout.upper()}), got {t.dim()} dims")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.device.type != "cuda":
            raise _invalid(name, "the FP8 forward runs on CUDA (Hopper) only")
        if t.device != q.device:
            raise _invalid(name, f"is on {t.device}, q is on {q.device}")
        if t.requires_grad:
            raise _invalid(name, "the FP8 path is forward only; it takes no tensor that requires grad")
    if out_dtype not in (torch.bfloat16, torch.float16):
        raise _invalid("out_dtype", f"expected torch.bfloat16 or torch.float16, got {out_dtype}", TypeError)
    if not isinstance(return_lse, bool):
        raise _invalid("return_lse", f"expected a bool, got {type(return_lse).__name__}", TypeError)
    if scale is not None and (not isinstance(scale, (int, float)) or isinstance(scale, bool)):
        raise _invalid("scale", f"expected a float, got {type(scale).__name__}", TypeError)
    if scale is not None and not (0 < scale < float("inf")):
        raise _invalid("scale", f"must be a positive finite number, got {scale}")
    mask = mask_name(causal)
    qb, kb, vb = _bhsd(q, layout), _bhsd(k, layout), _bhsd(v, layout)
    qd, qg = _descale("q_descale", q_descale, qb)
    kd, kg = _descale("k_descale", k_descale, kb)
    vd, vg = _descale("v_descale", v_descale, vb)
    args = (qb, kb, vb, qd, kd, vd, qg, kg, vg, mask, None if scale is None else float(scale), layout == "bshd",
            out_dtype, return_lse)
    # Eager calls run the implementation directly; torch.compile and dispatch modes see the op.
    direct = _ops.direct_call_ok((qb, kb, vb, qd, kd, vd))
    out, lse = fwd_fp8_impl(*args) if direct else torch.ops.flashcore.fwd_fp8(*args)
    return (out, lse) if return_lse else out


def _fp8_outputs(q: Tensor, out_bshd: bool, out_dtype: torch.dtype, keep_lse: bool) -> Tuple[Tensor, Tensor]:
    b, h, sq, d = q.shape
    out = torch.empty((b, sq, h, d) if out_bshd else (b, h, sq, d), dtype=out_dtype, device=q.device)
    lse = torch.empty((b, h, sq) if keep_lse else (0,), dtype=torch.float32, device=q.device)
    return out, lse


def fwd_fp8_impl(
    q: Tensor, k: Tensor, v: Tensor, q_descale: Tensor, k_descale: Tensor, v_descale: Tensor, q_gran: str,
    k_gran: str, v_gran: str, mask: str, scale: Optional[float], out_bshd: bool, out_dtype: torch.dtype,
    keep_lse: bool,
) -> Tuple[Tensor, Tensor]:
    """The FP8 forward on checked arguments: q, k, v as [B, H, S, D] views (e4m3), contiguous fp32
    descales with their granularities; out in q's layout (`out_bshd`) and `out_dtype`, lse fp32
    [B, H, Sq] (empty unless keep_lse)."""
    out, lse = _fp8_outputs(q, out_bshd, out_dtype, keep_lse)
    out_b = out.transpose(1, 2) if out_bshd else out
    _ops.ensure_nvrtc_path()
    with _ops._on_device(q.device):
        _native.forward_fp8_cuda(
            q.device.index, _ops._stream(q.device), _ops.CUDA_DTYPES[out_dtype], _ops._bshd(q), _ops._bshd(k),
            _ops._bshd(v), (q_descale.data_ptr(), q_gran), (k_descale.data_ptr(), k_gran),
            (v_descale.data_ptr(), v_gran), _ops._bshd(out_b), lse.data_ptr() if keep_lse else 0, mask, scale,
        )
    return out, lse


@torch.library.custom_op("flashcore::fwd_fp8", mutates_args=())
def fwd_fp8(
    q: Tensor, k: Tensor, v: Tensor, q_descale: Tensor, k_descale: Tensor, v_descale: Tensor, q_gran: str,
    k_gran: str, v_gran: str, mask: str, scale: Optional[float], out_bshd: bool, out_dtype: torch.dtype,
    keep_lse: bool,
) -> Tuple[Tensor, Tensor]:
    """The custom op around `fwd_fp8_impl` (forward only), so torch.compile traces FP8 calls
    without a graph break."""
    return fwd_fp8_impl(
        q, k, v, q_descale, k_descale, v_descale, q_gran, k_gran, v_gran, mask, scale, out_bshd, out_dtype, keep_lse
    )


@fwd_fp8.register_fake
def _fwd_fp8_fake(
    q: Tensor, k: Tensor, v: Tensor, q_descale: Tensor, k_descale: Tensor, v_descale: Tensor, q_gran: str,
    k_gran: str, v_gran: str, mask: str, scale: Optional[float], out_bshd: bool, out_dtype: torch.dtype,
    keep_lse: bool,
) -> Tuple[Tensor, Tensor]:
    return _fp8_outputs(q, out_bshd, out_dtype, keep_lse)
