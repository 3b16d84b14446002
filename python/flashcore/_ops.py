"""The torch.library custom ops `flashcore::fwd` and `flashcore::bwd`, their fake (meta)
implementations and the autograd formula tying them together.

Ops take q [B, H, Sq, D] and k, v [B, Hkv, Sk, D] as *logical* views with any strides whose last
dim is contiguous (a BSHD tensor enters as its `transpose(1, 2)` view, never copied). `mask` is
"none", "causal" (top-left) or "causal_br" (bottom-right); `scale` is always given.

The backward on CUDA is flashcore's native kernel (`_native.backward_cuda`: prep, main, post on
torch's current stream, dQ/dK/dV from the saved O and LSE, GQA reduced in the kernel). Two cases
run the recompute path `_backward_impl` (PyTorch math from the saved LSE, O(chunk x Sk) memory)
instead, with a one-time warning: head dims above 128 (the native backward's limit; the forward
goes to 256) and a gradient flowing into the LSE itself (`return_lse=True` and the LSE used in the
loss). CPU tensors always use `_backward_impl` (in float64 for float64 input).

Because they are opaque custom ops with fake implementations, `torch.compile(fullgraph=True)`
traces through them without a graph break, and since every buffer comes from torch's caching
allocator and the kernels run on torch's current stream (the backward's scratch is allocated in
stream order), CUDA-graph capture works (after one warm-up call has compiled the kernels).
"""

import contextlib
import math
import warnings
from typing import Iterable, Optional, Set, Tuple

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


def _dense(t: Tensor) -> bool:
    """Non-overlapping and dense: the strides are a permutation of a contiguous tensor's."""
    expected = 1
    for i in sorted(range(t.dim()), key=lambda i: t.stride(i)):
        if t.shape[i] == 1:
            continue
        if t.stride(i) != expected:
            return False
        expected *= t.shape[i]
    return True


def grad_like(t: Tensor) -> Tensor:
    """A new gradient buffer for input t: t's own strides when t is dense (so the gradient needs no
    copy on its way back, e.g. a BSHD or [S, B, H, D] activation), else `out_like(t)` (a view of a
    fused QKV buffer gets a contiguous BSHD or BHSD buffer). Used by the op and its fake alike."""
    if _dense(t):
        return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device)
    return out_like(t)


def kernel_ready(t: Tensor) -> bool:
    """What the CUDA kernels read without a copy: unit head-dim stride, a 16-byte aligned pointer
    and strides that are multiples of 8 elements (16 bytes) in the dims longer than 1."""
    if t.shape[-1] > 1 and t.stride(-1) != 1:
        return False
    if t.numel() == 0:
        return True
    return t.data_ptr() % 16 == 0 and all(st % 8 == 0 for n, st in zip(t.shape[:3], t.stride()[:3]) if n > 1)


def supported_backward_head_dim(d: int) -> bool:
    """The native CUDA backward's head dims (mirrors `_native.supported_backward_head_dim`; a test
    keeps them equal): multiples of 16 from 16 to 128."""
    return d % 16 == 0 and 16 <= d <= 128


def lse_dtype(dtype: torch.dtype) -> torch.dtype:
    # float64 inputs keep a float64 LSE so that gradcheck sees a float64 backward.
    return torch.float64 if dtype == torch.float64 else torch.float32


def _lse_buffer(q: Tensor, keep_lse: bool) -> Tensor:
    b, h, sq, _ = q.shape
    return q.new_empty((b, h, sq) if keep_lse else (0,), dtype=lse_dtype(q.dtype))


_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)


def _stream(device: torch.device) -> int:
    """torch's current stream on `device`, as a raw handle (the C accessor: a Stream object costs
    several microseconds per call, which small calls feel)."""
    if _raw_stream is not None:
        return _raw_stream(device.index)
    return torch.cuda.current_stream(device).cuda_stream


def _on_device(device: torch.device):
    """Makes `device` torch's current device for the call, unless it already is (the guard costs a
    few microseconds each way)."""
    if device.index == torch.cuda.current_device():
        return contextlib.nullcontext()
    return torch.cuda.device(device)


_functorch_active = getattr(torch._C, "_are_functorch_transforms_active", lambda: False)
# Without this accessor (another torch version) the dispatch stack cannot be seen: take the op path.
_dispatch_depth = getattr(torch._C, "_len_torch_dispatch_stack", lambda: 1)


def direct_call_ok(tensors: Iterable[Optional[Tensor]]) -> bool:
    """May an eager call run an op's implementation directly, skipping torch's dispatcher (~50 us of
    host time per call, more than the kernel of a small shape takes)? Only where the dispatcher
    would add nothing: not while torch.compile traces, under no Python dispatch mode or functorch
    transform, and on plain tensors (no subclass such as FakeTensor or DTensor). Callers also need
    no autograd record (the inference ops have none; `attention` checks requires_grad)."""
    if torch.compiler.is_compiling() or _dispatch_depth() > 0 or _functorch_active():
        return False
    return all(t is None or type(t) is Tensor for t in tensors)


def _sinks_ptr(sinks: Optional[Tensor]) -> int:
    """The device address of an fp32 [H] sinks tensor (checked by flashcore.functional), 0 for none."""
    return 0 if sinks is None else sinks.data_ptr()


def fwd_impl(
    q: Tensor, k: Tensor, v: Tensor, mask: str, scale: float, keep_lse: bool = True, lse_grad: bool = True,
    deterministic: bool = False, window_left: int = -1, window_right: int = -1, softcap: float = 0.0,
    sinks: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """out [B, H, Sq, D] (q's layout) and lse [B, H, Sq] (natural log; -inf for rows seeing no key).

    keep_lse=False skips the LSE (the kernel writes none; lse is an empty tensor): for calls whose
    result needs no gradient and whose caller did not ask for the LSE. lse_grad=False marks the LSE
    non-differentiable (the caller never sees it, so its gradient is zero). `deterministic` only
    travels to the backward (the forward is always deterministic). window_left / window_right
    (-1: unbounded) and softcap (0.0: none) as in `visible` and `scores`. sinks: fp32 [H] attention
    sinks (one logit per query head in every row's softmax denominator; the LSE includes it).
    """
    b, h, sq, d = q.shape
    out = out_like(q)
    lse = _lse_buffer(q, keep_lse)
    ext = window_left >= 0 or window_right >= 0 or softcap != 0.0 or sinks is not None
    if q.device.type == "cuda":
        ensure_nvrtc_path()
        with _on_device(q.device):
            if ext:
                _native.forward_ext_cuda(
                    q.device.index, _stream(q.device), CUDA_DTYPES[q.dtype], _bshd(q), _bshd(k), _bshd(v),
                    _bshd(out), lse.data_ptr() if keep_lse else 0, (h * sq, sq), mask, scale, window_left,
                    window_right, softcap, 0, 0, 0, b, sq, k.shape[2], 0, 0, 0, 0, sinks=_sinks_ptr(sinks),
                )
            else:
                _native.forward_cuda(
                    q.device.index, _stream(q.device), CUDA_DTYPES[q.dtype], _bshd(q), _bshd(k), _bshd(v),
                    _bshd(out), lse.data_ptr() if keep_lse else 0, mask, scale,
                )
    elif ext:
        # The native CPU reference has no window or softcap: the same math in float64 torch.
        o64, lse64 = math_forward(
            q, k, v, visible(mask, sq, k.shape[2], window_left, window_right), scale, softcap, sinks
        )
        out.copy_(o64)
        if keep_lse:
            lse.copy_(lse64)
    else:
        out64 = torch.empty((b, sq, h, d), dtype=torch.float64)
        lse64 = torch.empty((b, h, sq), dtype=torch.float64)
        _native.forward_cpu(
            CPU_DTYPES[q.dtype], _bshd(q), _bshd(k), _bshd(v), out64.data_ptr(), lse64.data_ptr(), mask, scale
        )
        out.copy_(out64.transpose(1, 2))
        if keep_lse:
            lse.copy_(lse64)
    return out, lse


@torch.library.custom_op("flashcore::fwd", mutates_args=())
def fwd(
    q: Tensor, k: Tensor, v: Tensor, mask: str, scale: float, keep_lse: bool = True, lse_grad: bool = True,
    deterministic: bool = False, window_left: int = -1, window_right: int = -1, softcap: float = 0.0,
    sinks: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """The custom op around `fwd_impl` (autograd, torch.compile, dispatch modes)."""
    return fwd_impl(q, k, v, mask, scale, keep_lse, lse_grad, deterministic, window_left, window_right, softcap, sinks)


@fwd.register_fake
def _fwd_fake(
    q: Tensor, k: Tensor, v: Tensor, mask: str, scale: float, keep_lse: bool = True, lse_grad: bool = True,
    deterministic: bool = False, window_left: int = -1, window_right: int = -1, softcap: float = 0.0,
    sinks: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    return out_like(q), _lse_buffer(q, keep_lse)


def visible(
    mask: str, sq: int, sk: int, window_left: int = -1, window_right: int = -1, device=None
) -> Tensor:
    """[Sq, Sk] bool: may query i see key j. The diagonal of query i is key i + d, d = 0 for "causal"
    (top-left) and Sk - Sq otherwise (bottom-right, FlashAttention's convention, also for a window
    without a causal mask); a causal mask bounds the right edge at the diagonal, a window at
    d + right, and its left edge is d - left (-1: unbounded)."""
    i = torch.arange(sq, device=device)[:, None]
    j = torch.arange(sk, device=device)[None, :]
    d = 0 if mask == "causal" else sk - sq
    vis = torch.ones(sq, sk, dtype=torch.bool, device=device)
    if mask != "none":
        vis &= j <= i + d
    if window_right >= 0:
        vis &= j <= i + d + window_right
    if window_left >= 0:
        vis &= j >= i + d - window_left
    return vis


def scores(q: Tensor, k: Tensor, scale: float, softcap: float) -> Tensor:
    """The logits softmax sees: scale · q kᵀ, or softcap · tanh(scale · q kᵀ / softcap)."""
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    return softcap * torch.tanh(s / softcap) if softcap != 0.0 else s


def math_forward(
    q: Tensor, k: Tensor, v: Tensor, vis: Tensor, scale: float, softcap: float, sinks: Optional[Tensor] = None
) -> Tuple[Tensor, Tensor]:
    """Attention in float64 torch on q [B, H, Sq, D], k/v [B, Hkv, Sk, D] with visibility vis
    [Sq, Sk] (or [B, 1, Sq, Sk]): the CPU path of the options the native reference lacks. Rows that
    see no key give 0 and LSE -inf (the sink's logit with `sinks` [H]: it joins every row's
    denominator with a zero value). Returns float64 (out [B, H, Sq, D], lse [B, H, Sq])."""
    g = q.shape[1] // k.shape[1]
    q64 = q.to(torch.float64)
    k64 = k.to(torch.float64).repeat_interleave(g, 1)
    v64 = v.to(torch.float64).repeat_interleave(g, 1)
    s = scores(q64, k64, scale, softcap).masked_fill(~vis, float("-inf"))
    lse = torch.logsumexp(s, -1)
    if sinks is not None:
        lse = torch.logaddexp(lse, sinks.to(device=lse.device, dtype=torch.float64)[None, :, None])
    seen = torch.isfinite(lse)
    p = torch.exp(s - torch.where(seen, lse, torch.zeros_like(lse)).unsqueeze(-1))
    return torch.matmul(p, v64), lse


def bwd_impl(
    dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dlse: Optional[Tensor], mask: str,
    scale: float, deterministic: bool = False, window_left: int = -1, window_right: int = -1, softcap: float = 0.0,
) -> Tuple[Tensor, Tensor, Tensor]:
    """dq, dk, dv (each laid out like its input, see `grad_like`) for the loss gradients dout and,
    optionally, dlse. CUDA: the native kernels unless `recompute_reason` names a case they do not
    serve; CPU: `_backward_impl`."""
    dq, dk, dv = grad_like(q), grad_like(k), grad_like(v)
    reason = recompute_reason(q)
    if reason is None:
        _native_backward(
            dout, q, k, v, out, lse, dq, dk, dv, mask, scale, deterministic, window_left, window_right, softcap, dlse
        )
        return dq, dk, dv
    if q.device.type == "cuda":
        _warn_recompute(reason)
    grads = _backward_impl(dout, q, k, v, out, lse, dlse, mask, scale, window_left, window_right, softcap)
    for r, g in zip((dq, dk, dv), grads):
        r.copy_(g)
    return dq, dk, dv


@torch.library.custom_op("flashcore::bwd", mutates_args=())
def bwd(
    dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dlse: Optional[Tensor], mask: str,
    scale: float, deterministic: bool = False, window_left: int = -1, window_right: int = -1, softcap: float = 0.0,
) -> Tuple[Tensor, Tensor, Tensor]:
    """The custom op around `bwd_impl`."""
    return bwd_impl(dout, q, k, v, out, lse, dlse, mask, scale, deterministic, window_left, window_right, softcap)


@bwd.register_fake
def _bwd_fake(
    dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dlse: Optional[Tensor], mask: str,
    scale: float, deterministic: bool = False, window_left: int = -1, window_right: int = -1, softcap: float = 0.0,
) -> Tuple[Tensor, Tensor, Tensor]:
    return grad_like(q), grad_like(k), grad_like(v)


# Why a CUDA backward runs the recompute path instead of the native kernels.
RECOMPUTE_REASONS = {
    "head_dim": "head dims above 128 (the native backward serves multiples of 16 up to 128)",
}
_WARNED: Set[str] = set()


def recompute_reason(q: Tensor) -> Optional[str]:
    """None when the native CUDA backward serves this call, else why not ("cpu" for CPU tensors,
    or a key of RECOMPUTE_REASONS). Windows, softcaps and a gradient into the LSE all run natively."""
    if q.device.type != "cuda":
        return "cpu"
    if not supported_backward_head_dim(q.shape[-1]):
        return "head_dim"
    return None


def _warn_recompute(reason: str) -> None:
    if reason in _WARNED:
        return
    _WARNED.add(reason)
    warnings.warn(
        f"flashcore: this backward runs PyTorch math from the saved LSE instead of the native kernel "
        f"({RECOMPUTE_REASONS[reason]}); it is correct but slower. Warned once per process.",
        stacklevel=2,
    )


def _native_backward(
    dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dq: Tensor, dk: Tensor, dv: Tensor,
    mask: str, scale: float, deterministic: bool, window_left: int = -1, window_right: int = -1,
    softcap: float = 0.0, dlse: Optional[Tensor] = None,
) -> None:
    """The CUDA kernels on torch's current stream, writing dq, dk, dv (fresh `grad_like` buffers).

    The gradient autograd hands over may be any tensor (an expanded one from `.sum()`, a view
    with odd strides): one the kernel cannot read as it is gets copied. q, k, v and out passed the
    forward's checks and are read in place. dlse, the LSE's gradient, goes in as fp32 [B, H, Sq]
    contiguous, like the LSE itself.
    """
    dout = dout if kernel_ready(dout) else grad_like(q).copy_(dout)
    if dlse is not None:
        dlse = dlse.to(device=q.device, dtype=torch.float32).contiguous()
    q, k, v, out = (t if kernel_ready(t) else t.contiguous() for t in (q, k, v, out))
    ensure_nvrtc_path()
    with _on_device(q.device):
        _native.backward_cuda(
            q.device.index, _stream(q.device), CUDA_DTYPES[q.dtype], _bshd(q), _bshd(k), _bshd(v), _bshd(out), _bshd(dout),
            lse.data_ptr(), _bshd(dq), _bshd(dk), _bshd(dv), mask, scale, deterministic, window_left, window_right,
            softcap if softcap != 0.0 else None, dlse.data_ptr() if dlse is not None else 0,
        )


def _backward_impl(
    dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dlse: Optional[Tensor], mask: str,
    scale: float, window_left: int = -1, window_right: int = -1, softcap: float = 0.0,
) -> Tuple[Tensor, Tensor, Tensor]:
    """The recompute backward: PyTorch math in fp32 (float64 for float64 inputs). Serves CPU
    tensors, and CUDA calls the native kernels do not (`recompute_reason`).

    Recomputes P = exp(S - lse) from the saved LSE one chunk of query rows at a time, so the extra
    memory is O(chunk x Sk) rather than O(Sq x Sk). GQA needs no copy of k/v per query head: the
    query heads of one group are stacked along the row axis, so one matmul against their shared k/v
    head serves the group, and dk/dv sum over it by construction.
        dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ∘ (dP − rowsum(dO ∘ O) + dlse),  dQ = scale·dS K,  dK = scale·dSᵀ Q
    With a softcap the logits are c·tanh(scale·S/c), so dS also carries their derivative 1 − tanh²;
    a window only changes which entries of P are zero.
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
    restricted = mask != "none" or window_left >= 0 or window_right >= 0
    vis_all = visible(mask, sq, sk, window_left, window_right, q.device) if restricted else None

    def rows_of(t: Tensor, i0: int, i1: int) -> Tensor:
        # [B, H, c, X] -> [B, Hkv, G*c, X]: the G query heads of a group stacked along the rows.
        return t[:, :, i0:i1].to(ct).reshape(b, hkv, g * (i1 - i0), t.shape[-1])

    for i0 in range(0, sq, chunk):
        i1 = min(sq, i0 + chunk)
        qc, doc, oc = rows_of(q, i0, i1), rows_of(dout, i0, i1), rows_of(out, i0, i1)
        lc = rows_of(lse.unsqueeze(-1), i0, i1)
        # A row that sees no key has lse = -inf and P = 0; give it a finite lse so exp() stays 0, not NaN.
        lc = torch.where(torch.isinf(lc), torch.zeros_like(lc), lc)
        raw = torch.matmul(qc, kf.transpose(-1, -2)) * scale
        if softcap != 0.0:
            t = torch.tanh(raw / softcap)
            p = torch.exp(softcap * t - lc)
        else:
            p = torch.exp(raw - lc)
        if vis_all is not None:
            p = p.masked_fill(~vis_all[i0:i1].repeat(g, 1), 0.0)
        dpv = torch.matmul(doc, vf.transpose(-1, -2))
        delta = (doc * oc).sum(-1, keepdim=True)
        if dlse is not None:
            delta = delta - rows_of(dlse.unsqueeze(-1), i0, i1)
        ds = p * (dpv - delta)
        if softcap != 0.0:
            ds = ds * (1 - t * t)
        dq[:, :, i0:i1] = (torch.matmul(ds, kf) * scale).reshape(b, h, i1 - i0, d)
        dk += torch.matmul(ds.transpose(-1, -2), qc) * scale
        dv += torch.matmul(p.transpose(-1, -2), doc)
    return dq, dk, dv


def _setup_context(ctx, inputs, output) -> None:
    q, k, v, mask, scale, keep_lse, lse_grad, deterministic, window_left, window_right, softcap, sinks = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse, sinks)
    ctx.mask, ctx.scale, ctx.keep_lse, ctx.lse_grad, ctx.deterministic = mask, scale, keep_lse, lse_grad, deterministic
    ctx.window, ctx.softcap = (window_left, window_right), softcap
    if not lse_grad:
        # The caller never sees the LSE: tell autograd (and AOTAutograd, which then traces no
        # tangent for it), so the backward never mistakes a zero LSE gradient for a real one.
        ctx.mark_non_differentiable(lse)
    # An unused output's gradient arrives as None rather than zeros: with return_lse=True and the
    # LSE unused, dlse stays None and the native backward serves the call.
    ctx.set_materialize_grads(False)


def _backward(ctx, dout: Optional[Tensor], dlse: Optional[Tensor]):
    q, k, v, out, lse, sinks = ctx.saved_tensors
    if not ctx.lse_grad:
        dlse = None
    nones = (None,) * 8
    if dout is None and dlse is None:
        return (None, None, None) + nones + (None,)
    if dout is None:
        dout = torch.zeros_like(out)
    wl, wr = ctx.window
    if not ctx.keep_lse:
        # The forward skipped the LSE because no gradient was expected (autograd disagreed, e.g.
        # a tensor gained requires_grad after the check): run the forward again for it.
        out, lse = torch.ops.flashcore.fwd(
            q, k, v, ctx.mask, ctx.scale, window_left=wl, window_right=wr, softcap=ctx.softcap, sinks=sinks
        )
    # With sinks the saved LSE includes them, so P = exp(S - lse) are the true probabilities and
    # dq, dk, dv need nothing else: the sink's value is 0, so dO·O still equals rowsum(dP ∘ P).
    # Eager backward runs the implementation directly (`direct_call_ok`); a traced one sees the op.
    bwd_fn = bwd_impl if direct_call_ok((dout, q, k, v, out, lse, dlse)) else torch.ops.flashcore.bwd
    dq, dk, dv = bwd_fn(dout, q, k, v, out, lse, dlse, ctx.mask, ctx.scale, ctx.deterministic, wl, wr, ctx.softcap)
    dsinks = None
    if sinks is not None and ctx.needs_input_grad[11]:
        dsinks = sinks_grad(dout, out, lse, dlse, sinks)
    return (dq, dk, dv) + nones + (dsinks,)


def sinks_grad(dout: Tensor, out: Tensor, lse: Tensor, dlse: Optional[Tensor], sinks: Tensor) -> Tensor:
    """d loss / d sinks for out [B, H, S, D], lse [B, H, S] (with the sinks): the sink of head h has
    probability p_i = exp(sink_h - lse_i) in row i and value 0, so its logit's gradient is
    sum_i p_i (0 - rowsum(dO ∘ O)_i) over the rows of head h, plus sum_i p_i dlse_i for a gradient
    flowing into the LSE."""
    ct = torch.float64 if out.dtype == torch.float64 else torch.float32
    delta = (dout.to(ct) * out.to(ct)).sum(-1)
    if dlse is not None:
        delta = delta - dlse.to(ct)
    p = torch.exp(sinks.to(ct)[None, :, None] - lse.to(ct))
    return -(p * delta).sum((0, 2)).to(sinks.dtype)


torch.library.register_autograd("flashcore::fwd", _backward, setup_context=_setup_context)


class AttentionFunction(torch.autograd.Function):
    """The eager autograd path of `flashcore::fwd` (`direct_call_ok` calls): the same forward,
    saved state and backward as the op's registered autograd, without the dispatcher and the
    custom-op autograd wrapper around them, which cost more host time than a small shape's
    backward kernels (bench/NOTES.md, session 6). Traced or transformed calls keep the op."""

    @staticmethod
    def forward(ctx, q, k, v, mask, scale, keep_lse, lse_grad, deterministic, window_left, window_right, softcap,
                sinks):
        inputs = (q, k, v, mask, scale, keep_lse, lse_grad, deterministic, window_left, window_right, softcap, sinks)
        output = fwd_impl(*inputs)
        _setup_context(ctx, inputs, output)
        return output

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout, dlse):
        # The native backward is not itself differentiable: a second derivative raises.
        return _backward(ctx, dout, dlse)


# ---- Inference paths: packed variable-length batches, KV caches (contiguous or paged), merge. ----
# No autograd: flashcore.attention_varlen / attention_with_kvcache / merge refuse inputs that
# require gradients. The int32 index tensors (cu_seqlens, cache_seqlens, block_table) stay on the
# device: the CUDA paths never read them on the host (no sync, so CUDA-graph capture works); the
# CPU paths do.


def _packed(t: Tensor) -> Tuple[int, Tuple[int, int, int, int], Tuple[int, int, int, int]]:
    """A packed [total, H, D] tensor as the native side's [1, total, H, D] Tensor4."""
    n, h, d = t.shape
    sn, sh, sd = t.stride()
    return t.data_ptr(), (1, n, h, d), (max(1, n) * sn, sn, sh, sd)


def _t4(t: Tensor) -> Tuple[int, Tuple[int, int, int, int], Tuple[int, int, int, int]]:
    """A [B, S, H, D] tensor as it is."""
    return t.data_ptr(), tuple(t.shape), tuple(t.stride())  # type: ignore[return-value]


def _varlen_lse(q: Tensor, keep_lse: bool) -> Tensor:
    return q.new_empty((q.shape[1], q.shape[0]) if keep_lse else (0,), dtype=torch.float32)


def fwd_varlen_impl(
    q: Tensor, k: Tensor, v: Tensor, cu_seqlens_q: Tensor, cu_seqlens_k: Tensor, max_seqlen_q: int,
    max_seqlen_k: int, causal: bool, scale: float, window_left: int, window_right: int, softcap: float,
    keep_lse: bool, sinks: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """Packed sequences: q [total_q, H, D], k/v [total_k, Hkv, D]; sequence b owns rows
    cu_seqlens_q[b] .. cu_seqlens_q[b + 1] of q (likewise k/v). causal is bottom-right per sequence.
    Returns out [total_q, H, D] (contiguous) and lse [H, total_q] fp32 (empty unless keep_lse)."""
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    lse = _varlen_lse(q, keep_lse)
    mask = "causal_br" if causal else "none"
    if q.device.type == "cuda":
        ensure_nvrtc_path()
        with _on_device(q.device):
            _native.forward_ext_cuda(
                q.device.index, _stream(q.device), CUDA_DTYPES[q.dtype], _packed(q), _packed(k), _packed(v),
                _packed(out), lse.data_ptr() if keep_lse else 0, (0, q.shape[0]), mask, scale, window_left,
                window_right, softcap, cu_seqlens_q.data_ptr(), cu_seqlens_k.data_ptr(), 0,
                cu_seqlens_q.shape[0] - 1, max_seqlen_q, max_seqlen_k, 0, 0, 0, 0, sinks=_sinks_ptr(sinks),
            )
        return out, lse
    cq, ck = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    for b in range(len(cq) - 1):
        q0, q1, k0, k1 = cq[b], cq[b + 1], ck[b], ck[b + 1]
        vis = visible(mask, q1 - q0, k1 - k0, window_left, window_right)
        o64, l64 = math_forward(
            q[q0:q1].transpose(0, 1)[None], k[k0:k1].transpose(0, 1)[None], v[k0:k1].transpose(0, 1)[None], vis,
            scale, softcap, sinks,
        )
        out[q0:q1] = o64[0].transpose(0, 1).to(q.dtype)
        if keep_lse:
            lse[:, q0:q1] = l64[0].to(lse.dtype)
    return out, lse


@torch.library.custom_op("flashcore::fwd_varlen", mutates_args=())
def fwd_varlen(
    q: Tensor, k: Tensor, v: Tensor, cu_seqlens_q: Tensor, cu_seqlens_k: Tensor, max_seqlen_q: int,
    max_seqlen_k: int, causal: bool, scale: float, window_left: int, window_right: int, softcap: float,
    keep_lse: bool, sinks: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """The custom op around `fwd_varlen_impl`."""
    return fwd_varlen_impl(
        q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal, scale, window_left, window_right,
        softcap, keep_lse, sinks,
    )


@fwd_varlen.register_fake
def _fwd_varlen_fake(
    q: Tensor, k: Tensor, v: Tensor, cu_seqlens_q: Tensor, cu_seqlens_k: Tensor, max_seqlen_q: int,
    max_seqlen_k: int, causal: bool, scale: float, window_left: int, window_right: int, softcap: float,
    keep_lse: bool, sinks: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    return torch.empty(q.shape, dtype=q.dtype, device=q.device), _varlen_lse(q, keep_lse)


def _cache_lse(q: Tensor, keep_lse: bool) -> Tensor:
    b, sq, h, _ = q.shape
    return q.new_empty((b, h, sq) if keep_lse else (0,), dtype=torch.float32)


def fwd_kvcache_impl(
    q: Tensor, k_cache: Tensor, v_cache: Tensor, cache_seqlens: Tensor, block_table: Optional[Tensor], causal: bool,
    scale: float, window_left: int, window_right: int, softcap: float, num_splits: int, keep_lse: bool,
    sinks: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """q [B, Sq, H, D] against the first cache_seqlens[b] keys of sequence b's cache: k_cache /
    v_cache [B, S_cache, Hkv, D], or page pools [num_pages, page_size, Hkv, D] with block_table
    int32 [B, max_pages] (sequence b's key j lives in page block_table[b, j // page_size]). causal
    is bottom-right against each sequence's cache length. Returns out [B, Sq, H, D] (contiguous)
    and lse [B, H, Sq] fp32 (empty unless keep_lse)."""
    b, sq, h, _ = q.shape
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    lse = _cache_lse(q, keep_lse)
    mask = "causal_br" if causal else "none"
    paged = block_table is not None
    if q.device.type == "cuda":
        ensure_nvrtc_path()
        page = k_cache.shape[1] if paged else 0
        max_k = block_table.shape[1] * page if block_table is not None else k_cache.shape[1]
        with _on_device(q.device):
            _native.forward_ext_cuda(
                q.device.index, _stream(q.device), CUDA_DTYPES[q.dtype], _t4(q), _t4(k_cache), _t4(v_cache),
                _t4(out), lse.data_ptr() if keep_lse else 0, (h * sq, sq), mask, scale, window_left, window_right,
                softcap, 0, 0, cache_seqlens.data_ptr(), b, sq, max_k,
                block_table.data_ptr() if block_table is not None else 0,
                block_table.stride(0) if block_table is not None else 0, page, num_splits, sinks=_sinks_ptr(sinks),
            )
        return out, lse
    for i, n in enumerate(cache_seqlens.tolist()):
        if block_table is not None:
            pages = block_table[i, : -(-n // k_cache.shape[1])].long()
            kb, vb = (c[pages].flatten(0, 1)[:n] for c in (k_cache, v_cache))
        else:
            kb, vb = k_cache[i, :n], v_cache[i, :n]
        vis = visible(mask, sq, n, window_left, window_right)
        o64, l64 = math_forward(
            q[i].transpose(0, 1)[None], kb.transpose(0, 1)[None], vb.transpose(0, 1)[None], vis, scale, softcap, sinks
        )
        out[i] = o64[0].transpose(0, 1).to(q.dtype)
        if keep_lse:
            lse[i] = l64[0].to(lse.dtype)
    return out, lse


@torch.library.custom_op("flashcore::fwd_kvcache", mutates_args=())
def fwd_kvcache(
    q: Tensor, k_cache: Tensor, v_cache: Tensor, cache_seqlens: Tensor, block_table: Optional[Tensor], causal: bool,
    scale: float, window_left: int, window_right: int, softcap: float, num_splits: int, keep_lse: bool,
    sinks: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """The custom op around `fwd_kvcache_impl`."""
    return fwd_kvcache_impl(
        q, k_cache, v_cache, cache_seqlens, block_table, causal, scale, window_left, window_right, softcap, num_splits,
        keep_lse, sinks,
    )


@fwd_kvcache.register_fake
def _fwd_kvcache_fake(
    q: Tensor, k_cache: Tensor, v_cache: Tensor, cache_seqlens: Tensor, block_table: Optional[Tensor], causal: bool,
    scale: float, window_left: int, window_right: int, softcap: float, num_splits: int, keep_lse: bool,
    sinks: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    return torch.empty(q.shape, dtype=q.dtype, device=q.device), _cache_lse(q, keep_lse)


@torch.library.custom_op("flashcore::merge", mutates_args=())
def merge(o_a: Tensor, lse_a: Tensor, o_b: Tensor, lse_b: Tensor) -> Tuple[Tensor, Tensor]:
    """The attention of the same queries over the union of two disjoint key sets, from each set's
    output o_* [B, S, H, D] and LSE lse_* [B, H, S]: lse = logaddexp(lse_a, lse_b),
    o = o_a·exp(lse_a − lse) + o_b·exp(lse_b − lse); rows with both LSEs -inf give 0 and -inf.
    Returns out [B, S, H, D] (contiguous, o_a's dtype) and lse [B, H, S] (lse_a's dtype)."""
    out = torch.empty(o_a.shape, dtype=o_a.dtype, device=o_a.device)
    lse = torch.empty(lse_a.shape, dtype=lse_a.dtype, device=lse_a.device)
    if o_a.device.type == "cuda":
        ensure_nvrtc_path()
        la, lb = lse_a.contiguous(), lse_b.contiguous()
        oa, ob = (t if t.stride(-1) == 1 else t.contiguous() for t in (o_a, o_b))
        with torch.cuda.device(o_a.device):
            _native.merge_cuda(
                o_a.device.index, _stream(o_a.device), CUDA_DTYPES[o_a.dtype], _t4(oa), la.data_ptr(), _t4(ob),
                lb.data_ptr(), _t4(out), lse.data_ptr(),
            )
        return out, lse
    o, l = merge_math(o_a, lse_a, o_b, lse_b)
    out.copy_(o)
    lse.copy_(l)
    return out, lse


@merge.register_fake
def _merge_fake(o_a: Tensor, lse_a: Tensor, o_b: Tensor, lse_b: Tensor) -> Tuple[Tensor, Tensor]:
    return (
        torch.empty(o_a.shape, dtype=o_a.dtype, device=o_a.device),
        torch.empty(lse_a.shape, dtype=lse_a.dtype, device=lse_a.device),
    )


def merge_math(o_a: Tensor, lse_a: Tensor, o_b: Tensor, lse_b: Tensor) -> Tuple[Tensor, Tensor]:
    """merge's formula in float64 torch (the CPU path)."""
    la, lb = lse_a.to(torch.float64), lse_b.to(torch.float64)
    lse = torch.logaddexp(la, lb)
    # Both -inf: logaddexp gives -inf and the weights below would be NaN; make them 0.
    base = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
    wa = torch.exp(la - base).transpose(1, 2).unsqueeze(-1)  # [B, S, H, 1]
    wb = torch.exp(lb - base).transpose(1, 2).unsqueeze(-1)
    return o_a.to(torch.float64) * wa + o_b.to(torch.float64) * wb, lse


def default_scale(head_dim: int) -> float:
    return 1.0 / math.sqrt(head_dim)
