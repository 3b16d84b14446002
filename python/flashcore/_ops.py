"""The torch.library custom ops `flashcore::fwd` and `flashcore::bwd`, their fake (meta)
implementations and the autograd formula tying them together.

Ops take q [B, H, Sq, D] and k, v [B, Hkv, Sk, D] as *logical* views with any strides whose last
dim is contiguous (a BSHD tensor enters as its `transpose(1, 2)` view, never copied). `mask` is
"none", "causal" (top-left) or "causal_br" (bottom-right); `scale` is always given.

Because they are opaque custom ops with fake implementations, `torch.compile(fullgraph=True)`
traces through them without a graph break, and since every buffer comes from torch's caching
allocator and the kernel runs on torch's current stream, CUDA-graph capture works (after one
warm-up call has compiled the kernel).
"""

import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from . import _native
from ._runtime import ensure_nvrtc_path

MASKS = ("none", "causal", "causal_br")
CPU_DTYPES = {torch.float32: "f32", torch.float64: "f64", torch.float16: "f16", torch.bfloat16: "bf16"}
CUDA_DTYPES = {torch.float16: "fp16", torch.bfloat16: "bf16"}
# Elements of one [rows x Sk] score block per backward chunk, summed over batch and heads: bounds
# the backward's extra memory to a few such fp32 blocks (~64 MiB each) whatever the sequence length.
BWD_CHUNK_ELEMENTS = 1 << 24


def _bshd(t: Tensor) -> Tuple[int, Tuple[int, int, int, int], Tuple[int, int, int, int]]:
    """(data_ptr, shape, strides) of a [B, H, S, D] view, in the Rust side's [B, S, H, D] order."""
    b, h, s, d = t.shape
    sb, sh, ss, sd = t.stride()
    return t.data_ptr(), (b, s, h, d), (sb, ss, sh, sd)


def out_like(q: Tensor) -> Tensor:
    """A new [B, H, S, D] tensor laid out like q: BSHD memory if q's heads are closer than its rows
    (the Rust `TensorDesc::like` rule), else contiguous BHSD."""
    b, h, s, d = q.shape
    if q.stride(1) < q.stride(2) or s == 1:
        return q.new_empty((b, s, h, d)).transpose(1, 2)
    return q.new_empty((b, h, s, d))


def lse_dtype(dtype: torch.dtype) -> torch.dtype:
    # float64 inputs keep a float64 LSE so that gradcheck sees a float64 backward.
    return torch.float64 if dtype == torch.float64 else torch.float32


@torch.library.custom_op("flashcore::fwd", mutates_args=())
def fwd(q: Tensor, k: Tensor, v: Tensor, mask: str, scale: float) -> Tuple[Tensor, Tensor]:
    """out [B, H, Sq, D] (q's layout) and lse [B, H, Sq] (natural log; -inf for rows seeing no key)."""
    b, h, sq, d = q.shape
    out = out_like(q)
    lse = q.new_empty((b, h, sq), dtype=lse_dtype(q.dtype))
    if q.device.type == "cuda":
        ensure_nvrtc_path()
        with torch.cuda.device(q.device):
            stream = torch.cuda.current_stream(q.device).cuda_stream
            _native.forward_cuda(
                q.device.index, stream, CUDA_DTYPES[q.dtype], _bshd(q), _bshd(k), _bshd(v), _bshd(out),
                lse.data_ptr(), mask, scale,
            )
    else:
        out64 = torch.empty((b, sq, h, d), dtype=torch.float64)
        lse64 = torch.empty((b, h, sq), dtype=torch.float64)
        _native.forward_cpu(
            CPU_DTYPES[q.dtype], _bshd(q), _bshd(k), _bshd(v), out64.data_ptr(), lse64.data_ptr(), mask, scale
        )
        out.copy_(out64.transpose(1, 2))
        lse.copy_(lse64)
    return out, lse


@fwd.register_fake
def _fwd_fake(q: Tensor, k: Tensor, v: Tensor, mask: str, scale: float) -> Tuple[Tensor, Tensor]:
    b, h, sq, _ = q.shape
    return out_like(q), q.new_empty((b, h, sq), dtype=lse_dtype(q.dtype))


@torch.library.custom_op("flashcore::bwd", mutates_args=())
def bwd(
    dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dlse: Optional[Tensor], mask: str,
    scale: float,
) -> Tuple[Tensor, Tensor, Tensor]:
    """dq, dk, dv (each laid out like its input) for the loss gradients dout and, optionally, dlse."""
    dq, dk, dv = _backward_impl(dout, q, k, v, out, lse, dlse, mask, scale)
    # Copy into empty_like buffers so the real strides always match the fake ones below.
    res = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    for r, g in zip(res, (dq, dk, dv)):
        r.copy_(g)
    return res


@bwd.register_fake
def _bwd_fake(
    dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dlse: Optional[Tensor], mask: str,
    scale: float,
) -> Tuple[Tensor, Tensor, Tensor]:
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _backward_impl(
    dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dlse: Optional[Tensor], mask: str,
    scale: float,
) -> Tuple[Tensor, Tensor, Tensor]:
    """The backward seam: PyTorch math in fp32 (float64 for float64 inputs) until a native kernel
    replaces this function.

    Recomputes P = exp(S - lse) from the saved LSE one chunk of query rows at a time, so the extra
    memory is O(chunk x Sk) rather than O(Sq x Sk). GQA needs no copy of k/v per query head: the
    query heads of one group are stacked along the row axis, so one matmul against their shared k/v
    head serves the group, and dk/dv sum over it by construction.
        dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ∘ (dP − rowsum(dO ∘ O) + dlse),  dQ = scale·dS K,  dK = scale·dSᵀ Q
    """
    b, h, sq, d = q.shape
    hkv, sk = k.shape[1], k.shape[2]
    g = h // hkv
    ct = torch.float64 if q.dtype == torch.float64 else torch.float32
    kf, vf = k.to(ct), v.to(ct)
    dq = torch.empty((b, h, sq, d), dtype=ct, device=q.device)
    dk = torch.zeros((b, hkv, sk, d), dtype=ct, device=q.device)
    dv = torch.zeros((b, hkv, sk, d), dtype=ct, device=q.device)
    if sq == 0 or sk == 0 or b * h == 0:
        return dq, dk, dv
    chunk = max(1, min(sq, BWD_CHUNK_ELEMENTS // max(1, b * h * sk)))
    offset = 0 if mask == "causal" else sk - sq
    cols = torch.arange(sk, device=q.device)

    def rows_of(t: Tensor, i0: int, i1: int) -> Tensor:
        # [B, H, c, X] -> [B, Hkv, G*c, X]: the G query heads of a group stacked along the rows.
        return t[:, :, i0:i1].to(ct).reshape(b, hkv, g * (i1 - i0), t.shape[-1])

    for i0 in range(0, sq, chunk):
        i1 = min(sq, i0 + chunk)
        qc, doc, oc = rows_of(q, i0, i1), rows_of(dout, i0, i1), rows_of(out, i0, i1)
        lc = rows_of(lse.unsqueeze(-1), i0, i1)
        # A row that sees no key has lse = -inf and P = 0; give it a finite lse so exp() stays 0, not NaN.
        lc = torch.where(torch.isinf(lc), torch.zeros_like(lc), lc)
        p = torch.exp(torch.matmul(qc, kf.transpose(-1, -2)) * scale - lc)
        if mask != "none":
            rows = torch.arange(i0, i1, device=q.device).repeat(g)
            p = p.masked_fill(cols[None, :] > rows[:, None] + offset, 0.0)
        dpv = torch.matmul(doc, vf.transpose(-1, -2))
        delta = (doc * oc).sum(-1, keepdim=True)
        if dlse is not None:
            delta = delta - rows_of(dlse.unsqueeze(-1), i0, i1)
        ds = p * (dpv - delta)
        dq[:, :, i0:i1] = (torch.matmul(ds, kf) * scale).reshape(b, h, i1 - i0, d)
        dk += torch.matmul(ds.transpose(-1, -2), qc) * scale
        dv += torch.matmul(p.transpose(-1, -2), doc)
    return dq, dk, dv


def _setup_context(ctx, inputs, output) -> None:
    q, k, v, mask, scale = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse)
    ctx.mask, ctx.scale = mask, scale


def _backward(ctx, dout: Tensor, dlse: Optional[Tensor]):
    q, k, v, out, lse = ctx.saved_tensors
    dq, dk, dv = torch.ops.flashcore.bwd(dout, q, k, v, out, lse, dlse, ctx.mask, ctx.scale)
    return dq, dk, dv, None, None


torch.library.register_autograd("flashcore::fwd", _backward, setup_context=_setup_context)


def default_scale(head_dim: int) -> float:
    return 1.0 / math.sqrt(head_dim)
