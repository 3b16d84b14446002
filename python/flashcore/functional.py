"""`flashcore.attention`, `attention_varlen`, `attention_with_kvcache` and `merge`: argument checks,
layout, mask and window conventions, then the custom ops."""

from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from . import _ops  # noqa: F401  (registers torch.ops.flashcore.*)
from ._native import UnsupportedError

Causal = Union[bool, str, None]
Window = Union[Tuple[Optional[int], Optional[int]], Sequence[Optional[int]], None]
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


def supported_page_size(p: int) -> bool:
    """Page sizes of a paged KV cache: powers of two from 16 to 256 (mirrors
    `_native.supported_page_size`; a test keeps them equal). Python, so torch.compile traces it."""
    return 16 <= p <= 256 and p & (p - 1) == 0


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
    _check_qkv_family((("q", q), ("k", k), ("v", v)), q)
    s_dim = 2 if layout == "bhsd" else 1
    h_dim = 3 - s_dim
    b, h, d = q.shape[0], q.shape[h_dim], q.shape[3]
    if k.shape[0] != b:
        raise _invalid("k", f"batch {k.shape[0]} differs from q's batch {b}")
    if v.shape != k.shape:
        raise _invalid("v", f"shape {tuple(v.shape)} differs from k's shape {tuple(k.shape)}")
    _check_heads(h, k.shape[h_dim], d, k.shape[3])


def window_pair(window: Window, causal: bool) -> Tuple[int, int]:
    """(left, right) with -1 for an unbounded side, from None or a pair of ints >= 0 / None / -1.
    A causal mask is already the window's right edge at 0: a larger right edge is an error, and
    the native side gets -1 (the causal bound serves)."""
    if window is None:
        return -1, -1
    if isinstance(window, (str, bytes)) or not hasattr(window, "__len__") or len(window) != 2:
        raise _invalid("window", f"expected None or a pair (left, right), got {window!r}", TypeError)
    sides = []
    for side in window:
        if side is None:
            sides.append(-1)
            continue
        if isinstance(side, bool) or not isinstance(side, int):
            raise _invalid("window", f"expected ints >= 0, None or -1 (unbounded), got {window!r}", TypeError)
        if side < -1:
            raise _invalid("window", f"expected ints >= 0, None or -1 (unbounded), got {window!r}")
        sides.append(side)
    left, right = sides
    if causal and right > 0:
        raise _invalid("window", f"a causal mask bounds the right edge at 0, got right = {right}")
    return left, (-1 if causal else right)


def softcap_value(softcap: Optional[float]) -> float:
    if softcap is None:
        return 0.0
    if isinstance(softcap, bool) or not isinstance(softcap, (int, float)):
        raise _invalid("softcap", f"expected a float, got {type(softcap).__name__}", TypeError)
    if softcap == 0:
        return 0.0
    if not (softcap > 0 and softcap < float("inf")):
        raise _invalid("softcap", f"must be a positive finite number (or None / 0 for none), got {softcap}")
    return float(softcap)


def scale_value(scale: Optional[float], head_dim: int) -> float:
    if scale is None:
        return _ops.default_scale(head_dim)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool):
        raise _invalid("scale", f"expected a float, got {type(scale).__name__}", TypeError)
    if not (scale > 0 and scale < float("inf")):
        raise _invalid("scale", f"must be a positive finite number, got {scale}")
    return float(scale)


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
    window: Window = None,
    softcap: Optional[float] = None,
    q_descale: Optional[Tensor] = None,
    k_descale: Optional[Tensor] = None,
    v_descale: Optional[Tensor] = None,
    sinks: Optional[Tensor] = None,
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
        window: sliding window (left, right): query i sees key j iff
            i + d - left <= j <= i + d + right, where i + d is the query's diagonal key: d = 0 with
            causal=True / "top_left", d = Sk - Sq otherwise (bottom-right, FlashAttention's
            convention, also without a causal mask). None or -1 leaves a side unbounded; with a
            causal mask right must be 0 or unbounded (the mask is the right edge). Key blocks
            outside every row's window are skipped, not just masked.
        softcap: logit softcap c (Gemma 2): the logits scale·q kᵀ become c·tanh(scale·q kᵀ / c).
        sinks: attention sinks (gpt-oss), a float tensor [H] on q's device: one logit per query head
            that joins every row's softmax denominator with a zero value, so a row's weights sum to
            less than 1: out = Σ_j e^{s_j} v_j / (e^{sinks[h]} + Σ_j e^{s_j}); the LSE includes it.
            Differentiable (its gradient is computed from the saved output and LSE).

    CUDA tensors (fp16/bf16) run the flashcore kernels on torch's current stream; any strides with
    a contiguous head dim are used as they are (16-byte aligned rows). CPU tensors (fp32/fp64/fp16/
    bf16) run the float64 reference and are cast back. The output takes q's layout.

    Gradients: on CUDA the native backward kernels compute dq, dk, dv from the saved output and
    LSE (O(N) memory; for GQA/MQA, dk and dv are summed over each group's query heads in the
    kernel), each laid out like its input; sliding windows, softcaps and a gradient flowing into the
    returned LSE included. Head dims above 128 use PyTorch math from the saved LSE instead (same
    results, slower; warned once). The LSE is only computed when a gradient may be needed or
    `return_lse` asks for it.

    FP8: torch.float8_e4m3fn q, k, v (CUDA, Hopper, head dims 64/128/256, forward only) run the FP8
    kernel with fp32 descales q_descale, k_descale, v_descale (None = 1; shapes [1], [B, H] or
    [B, H, ceil(S / 128)], H and S each tensor's own; see `flashcore.quantize_fp8`); the output is bf16
    (`flashcore.attention_fp8` takes `out_dtype`).
    """
    if isinstance(q, Tensor) and q.dtype == torch.float8_e4m3fn:
        from .fp8 import attention_fp8

        if window is not None:
            raise _invalid("window", "the FP8 forward has no sliding window", UnsupportedError)
        if softcap is not None:
            raise _invalid("softcap", "the FP8 forward has no softcap", UnsupportedError)
        if sinks is not None:
            raise _invalid("sinks", "the FP8 forward has no attention sinks", UnsupportedError)

        return attention_fp8(
            q, k, v, q_descale, k_descale, v_descale, causal=causal, scale=scale, return_lse=return_lse, layout=layout
        )
    for name, t in (("q_descale", q_descale), ("k_descale", k_descale), ("v_descale", v_descale)):
        if t is not None:
            raise _invalid(name, "descales go with float8_e4m3fn inputs only")
    check_inputs(q, k, v, layout)
    mask = mask_name(causal)
    scale = scale_value(scale, q.shape[-1])
    window_left, window_right = window_pair(window, mask != "none")
    cap = softcap_value(softcap)
    heads = q.shape[2] if layout == "bshd" else q.shape[1]
    sinks = sinks_value(sinks, heads, q)
    if not isinstance(return_lse, bool):
        raise _invalid("return_lse", f"expected a bool, got {type(return_lse).__name__}", TypeError)
    if not isinstance(deterministic, bool):
        raise _invalid("deterministic", f"expected a bool, got {type(deterministic).__name__}", TypeError)
    deterministic = deterministic or torch.are_deterministic_algorithms_enabled()
    # The LSE is what the backward needs; an inference call that does not return it skips it.
    needs_grad = torch.is_grad_enabled() and (
        q.requires_grad or k.requires_grad or v.requires_grad or (sinks is not None and sinks.requires_grad)
    )
    if layout == "bshd":
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    # Without tracing to serve, eager calls skip the dispatcher (it costs more host time than a
    # small call's kernels; `_ops.direct_call_ok`): the implementation runs directly, or under a
    # plain autograd.Function when a gradient is needed.
    args = (q, k, v, mask, scale, return_lse or needs_grad, return_lse, deterministic, window_left, window_right, cap,
            sinks)
    if not _ops.direct_call_ok((q, k, v, sinks)):
        out, lse = torch.ops.flashcore.fwd(*args)
    elif needs_grad:
        out, lse = _ops.AttentionFunction.apply(*args)
    else:
        out, lse = _ops.fwd_impl(*args)
    if layout == "bshd":
        out = out.transpose(1, 2)
    return (out, lse) if return_lse else out


def sinks_value(sinks: Optional[Tensor], heads: int, q: Tensor) -> Optional[Tensor]:
    """Checks attention sinks (a float tensor [H] on q's device) and returns them as the kernels
    take them: contiguous fp32 (float64 beside float64 CPU inputs), still differentiable."""
    if sinks is None:
        return None
    if not isinstance(sinks, Tensor):
        raise _invalid("sinks", f"expected a torch.Tensor [H] or None, got {type(sinks).__name__}", TypeError)
    if not sinks.is_floating_point() or sinks.dtype == torch.float8_e4m3fn:
        raise _invalid("sinks", f"expected a float tensor, got {sinks.dtype}", TypeError)
    if tuple(sinks.shape) != (heads,):
        raise _invalid("sinks", f"expected shape [{heads}] (one logit per query head), got {list(sinks.shape)}")
    if sinks.device != q.device:
        raise _invalid("sinks", f"is on {sinks.device}, q is on {q.device}")
    dtype = torch.float64 if q.dtype == torch.float64 else torch.float32
    return sinks.to(dtype).contiguous()


def _check_dense(name: str, t: Tensor, dims: int, what: str) -> None:
    if not isinstance(t, Tensor):
        raise _invalid(name, f"expected a torch.Tensor, got {type(t).__name__}", TypeError)
    if t.dim() != dims:
        raise _invalid(name, f"expected a {dims}-d tensor ({what}), got {t.dim()} dims")
    if t.is_nested or t.layout != torch.strided:
        raise _invalid(name, "expected a dense (strided) tensor")


def _check_qkv_family(named: Sequence[Tuple[str, Tensor]], ref: Tensor) -> None:
    """Same device and dtype as `ref` (the first), a contiguous head dim, a dtype the device serves."""
    for name, t in named:
        if t.device != ref.device:
            raise _invalid(name, f"is on {t.device}, {named[0][0]} is on {ref.device}")
        if t.dtype != ref.dtype:
            raise _invalid(name, f"dtype {t.dtype} differs from {named[0][0]}'s {ref.dtype}", TypeError)
        if t.shape[-1] > 1 and t.stride(-1) != 1:
            raise _invalid(name, f"the head dim must be contiguous (stride 1), got stride {t.stride(-1)}")
    first = named[0][0]
    if ref.device.type == "cuda":
        if ref.dtype not in _ops.CUDA_DTYPES:
            raise _invalid(first, f"dtype {ref.dtype} is not supported on CUDA (use float16 or bfloat16)", TypeError)
    elif ref.device.type in ("cpu", "meta"):
        if ref.dtype not in _ops.CPU_DTYPES:
            raise _invalid(first, f"dtype {ref.dtype} is not supported (float32/64, float16, bfloat16)", TypeError)
    else:
        raise _invalid(first, f"device {ref.device} is not supported (cuda or cpu)")


def _check_heads(q_heads: int, kv_heads: int, d: int, k_head_dim: int) -> None:
    if k_head_dim != d:
        raise _invalid("k", f"head dim {k_head_dim} differs from q's head dim {d}")
    if kv_heads == 0 or q_heads % kv_heads != 0:
        raise _invalid("k", f"query heads ({q_heads}) must be a multiple of key/value heads ({kv_heads})")
    if not supported_head_dim(d):
        raise _invalid("q", f"head dim {d} is not supported: multiples of 16 from 16 to 256", UnsupportedError)


def _check_index(name: str, t: Tensor, shape: Tuple[int, ...], device: torch.device, what: str) -> None:
    if not isinstance(t, Tensor):
        raise _invalid(name, f"expected an int32 torch.Tensor, got {type(t).__name__}", TypeError)
    if t.dtype != torch.int32:
        raise _invalid(name, f"expected dtype torch.int32, got {t.dtype}", TypeError)
    if t.device != device:
        raise _invalid(name, f"is on {t.device}, q is on {device}")
    if tuple(t.shape) != shape:
        raise _invalid(name, f"expected shape {list(shape)} ({what}), got {list(t.shape)}")


def _check_int(name: str, x: object, minimum: int = 0) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise _invalid(name, f"expected an int, got {type(x).__name__}", TypeError)
    if x < minimum:
        raise _invalid(name, f"must be >= {minimum}, got {x}")
    return x


def _check_causal_flag(causal: object) -> bool:
    if not isinstance(causal, bool):
        raise _invalid("causal", f"expected a bool (the mask is bottom-right per sequence), got {causal!r}", TypeError)
    return causal


def _inference_only(fn: str, named: Sequence[Tuple[str, Tensor]]) -> None:
    if not torch.is_grad_enabled():
        return
    for name, t in named:
        if t.requires_grad:
            raise _invalid(name, f"requires grad, but {fn} has no backward (inference only): call it under "
                           "torch.no_grad() or pass detached tensors")


def attention_varlen(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    cu_seqlens_q: Tensor,
    cu_seqlens_k: Tensor,
    max_seqlen_q: int,
    max_seqlen_k: int,
    *,
    causal: bool = False,
    scale: Optional[float] = None,
    window: Window = None,
    softcap: Optional[float] = None,
    return_lse: bool = False,
    sinks: Optional[Tensor] = None,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Attention over a batch of sequences of different lengths packed without padding.

    Args:
        q: [total_q, H, D]; sequence b owns rows cu_seqlens_q[b] .. cu_seqlens_q[b + 1].
        k, v: [total_k, Hkv, D], rows by cu_seqlens_k; H must be a multiple of Hkv.
        cu_seqlens_q, cu_seqlens_k: int32 [B + 1] on q's device, cumulative lengths from 0.
        max_seqlen_q, max_seqlen_k: the longest sequence's lengths, as Python ints (they size the
            launch; the kernels never read the lengths on the host, so the call is CUDA-graph safe).
        causal: bottom-right per sequence (FlashAttention's convention): query i of a sequence with
            Sq queries and Sk keys sees keys j <= i + Sk - Sq.
        scale, window, softcap, sinks: as in `attention` (the window's diagonal is bottom-right).
        return_lse: also return the LSE, fp32 [H, total_q].

    Inference only (no backward). On CUDA the index tensors are trusted for their values (checked
    on CPU): a wrong cu_seqlens gives wrong rows, never an access outside the tensors.
    Returns out [total_q, H, D] (contiguous), and the LSE if asked.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        _check_dense(name, t, 3, "[total, heads, head_dim]")
    _check_qkv_family((("q", q), ("k", k), ("v", v)), q)
    if v.shape != k.shape:
        raise _invalid("v", f"shape {tuple(v.shape)} differs from k's shape {tuple(k.shape)}")
    _check_heads(q.shape[1], k.shape[1], q.shape[2], k.shape[2])
    if not isinstance(cu_seqlens_q, Tensor) or cu_seqlens_q.dim() != 1 or cu_seqlens_q.shape[0] < 2:
        shape = list(cu_seqlens_q.shape) if isinstance(cu_seqlens_q, Tensor) else type(cu_seqlens_q).__name__
        raise _invalid("cu_seqlens_q", f"expected an int32 tensor [B + 1] with B >= 1, got {shape}",
                       ValueError if isinstance(cu_seqlens_q, Tensor) else TypeError)
    batch = cu_seqlens_q.shape[0] - 1
    _check_index("cu_seqlens_q", cu_seqlens_q, (batch + 1,), q.device, "B + 1 cumulative query counts")
    _check_index("cu_seqlens_k", cu_seqlens_k, (batch + 1,), q.device, "B + 1, as cu_seqlens_q")
    _check_int("max_seqlen_q", max_seqlen_q)
    _check_int("max_seqlen_k", max_seqlen_k)
    causal = _check_causal_flag(causal)
    scale = scale_value(scale, q.shape[-1])
    window_left, window_right = window_pair(window, causal)
    cap = softcap_value(softcap)
    if not isinstance(return_lse, bool):
        raise _invalid("return_lse", f"expected a bool, got {type(return_lse).__name__}", TypeError)
    sinks = sinks_value(sinks, q.shape[1], q)
    _inference_only(
        "attention_varlen", (("q", q), ("k", k), ("v", v)) + ((("sinks", sinks),) if sinks is not None else ())
    )
    # Index values are only checked where they are on the host and concrete (not while tracing).
    if q.device.type == "cpu" and not torch.compiler.is_compiling():
        for name, cu, total, mx in (("cu_seqlens_q", cu_seqlens_q, q.shape[0], max_seqlen_q),
                                    ("cu_seqlens_k", cu_seqlens_k, k.shape[0], max_seqlen_k)):
            c = cu.tolist()
            lengths = [c[i + 1] - c[i] for i in range(batch)]
            if c[0] != 0 or min(lengths) < 0 or c[-1] > total:
                raise _invalid(name, f"must rise from 0 to at most {total} rows, got {c}")
            if max(lengths) > mx:
                raise _invalid("max_seqlen_" + name[-1], f"{mx} is below the longest sequence ({max(lengths)})")
    direct = _ops.direct_call_ok((q, k, v, cu_seqlens_q, cu_seqlens_k, sinks))
    out, lse = (_ops.fwd_varlen_impl if direct else torch.ops.flashcore.fwd_varlen)(
        q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal, scale, window_left, window_right,
        cap, return_lse, sinks,
    )
    return (out, lse) if return_lse else out


def attention_with_kvcache(
    q: Tensor,
    k_cache: Tensor,
    v_cache: Tensor,
    cache_seqlens: Union[Tensor, int],
    block_table: Optional[Tensor] = None,
    *,
    causal: bool = False,
    scale: Optional[float] = None,
    window: Window = None,
    softcap: Optional[float] = None,
    num_splits: int = 0,
    return_lse: bool = False,
    sinks: Optional[Tensor] = None,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Attention of new queries against a KV cache (decode and chunked prefill), inference only.

    Args:
        q: [B, Sq, H, D] (BSHD, as FlashAttention's `flash_attn_with_kvcache`).
        k_cache, v_cache: [B, S_cache, Hkv, D]; or, with `block_table`, page pools
            [num_pages, page_size, Hkv, D] (page sizes: `flashcore.functional.supported_page_size`).
        cache_seqlens: int32 [B] (or one int for every sequence): keys in use in each cache.
        block_table: int32 [B, max_pages]: sequence b's key j lives in pool page
            block_table[b, j // page_size], slot j % page_size.
        causal: bottom-right against each sequence's cache length: query i of Sq sees keys
            j <= i + cache_seqlens[b] - Sq (the new tokens are the cache's last ones).
        scale, window, softcap, sinks: as in `attention` (the window's diagonal is bottom-right).
        num_splits: split each row's keys over this many CTAs and merge (0: the planner decides).
        return_lse: also return the LSE, fp32 [B, H, Sq].

    The kernels read cache_seqlens and block_table on the device only (no host sync: the call can
    be captured in a CUDA graph; its values are checked on CPU only).
    Returns out [B, Sq, H, D] (contiguous), and the LSE if asked.
    """
    _check_dense("q", q, 4, "[B, Sq, H, D]")
    _check_dense("k_cache", k_cache, 4, "[B, S_cache, Hkv, D] or [num_pages, page_size, Hkv, D]")
    _check_dense("v_cache", v_cache, 4, "as k_cache")
    _check_qkv_family((("q", q), ("k_cache", k_cache), ("v_cache", v_cache)), q)
    if v_cache.shape != k_cache.shape:
        raise _invalid("v_cache", f"shape {tuple(v_cache.shape)} differs from k_cache's {tuple(k_cache.shape)}")
    b, sq, h, d = q.shape
    if k_cache.shape[3] != d:
        raise _invalid("k_cache", f"head dim {k_cache.shape[3]} differs from q's head dim {d}")
    if k_cache.shape[2] == 0 or h % k_cache.shape[2] != 0:
        raise _invalid("k_cache", f"query heads ({h}) must be a multiple of key/value heads ({k_cache.shape[2]})")
    _check_heads(h, k_cache.shape[2], d, d)
    if block_table is None:
        if k_cache.shape[0] != b:
            raise _invalid("k_cache", f"batch {k_cache.shape[0]} differs from q's batch {b}")
        capacity = k_cache.shape[1]
    else:
        if not isinstance(block_table, Tensor) or block_table.dim() != 2:
            raise _invalid("block_table", "expected an int32 tensor [B, max_pages]",
                           ValueError if isinstance(block_table, Tensor) else TypeError)
        _check_index("block_table", block_table, (b, block_table.shape[1]), q.device, "B x max_pages")
        if block_table.stride(1) != 1 and block_table.shape[1] > 1:
            raise _invalid("block_table", "rows must be contiguous (stride 1 along the pages)")
        if not supported_page_size(k_cache.shape[1]):
            raise _invalid("k_cache", f"page size {k_cache.shape[1]} (dim 1 of the pool) is not supported")
        capacity = block_table.shape[1] * k_cache.shape[1]
    if isinstance(cache_seqlens, int) and not isinstance(cache_seqlens, bool):
        if not 0 <= cache_seqlens <= capacity:
            raise _invalid("cache_seqlens", f"{cache_seqlens} is outside the cache's 0 .. {capacity} keys")
        cache_seqlens = torch.full((b,), cache_seqlens, dtype=torch.int32, device=q.device)
    _check_index("cache_seqlens", cache_seqlens, (b,), q.device, "one key count per sequence")
    causal = _check_causal_flag(causal)
    scale = scale_value(scale, d)
    window_left, window_right = window_pair(window, causal)
    cap = softcap_value(softcap)
    _check_int("num_splits", num_splits)
    if not isinstance(return_lse, bool):
        raise _invalid("return_lse", f"expected a bool, got {type(return_lse).__name__}", TypeError)
    sinks = sinks_value(sinks, h, q)
    _inference_only(
        "attention_with_kvcache",
        (("q", q), ("k_cache", k_cache), ("v_cache", v_cache)) + ((("sinks", sinks),) if sinks is not None else ()),
    )
    # Index values are only checked where they are on the host and concrete (not while tracing).
    if q.device.type == "cpu" and not torch.compiler.is_compiling():
        n = cache_seqlens.tolist()
        if n and (min(n) < 0 or max(n) > capacity):
            raise _invalid("cache_seqlens", f"values must lie in 0 .. {capacity}, got {n}")
        if block_table is not None and block_table.numel():
            used = [block_table[i, : -(-n[i] // k_cache.shape[1])] for i in range(b)]
            pages = torch.cat(used) if used else block_table.new_empty(0)
            if pages.numel() and (int(pages.min()) < 0 or int(pages.max()) >= k_cache.shape[0]):
                raise _invalid("block_table", f"page indices must lie in 0 .. {k_cache.shape[0] - 1}")
    direct = _ops.direct_call_ok((q, k_cache, v_cache, cache_seqlens, block_table, sinks))
    out, lse = (_ops.fwd_kvcache_impl if direct else torch.ops.flashcore.fwd_kvcache)(
        q, k_cache, v_cache, cache_seqlens, block_table, causal, scale, window_left, window_right, cap, num_splits,
        return_lse, sinks,
    )
    return (out, lse) if return_lse else out


def merge(o_a: Tensor, lse_a: Tensor, o_b: Tensor, lse_b: Tensor) -> Tuple[Tensor, Tensor]:
    """Exact attention over the union of two disjoint key sets from each set's result.

    o_a, o_b: [B, S, H, D] outputs of the same queries (BSHD); lse_a, lse_b: their LSEs, fp32
    [B, H, S] (as `return_lse=True` gives them). Returns (o, lse): lse = logaddexp(lse_a, lse_b),
    o = o_a·exp(lse_a − lse) + o_b·exp(lse_b − lse); rows with both LSEs -inf give 0 and -inf.
    Inference only (no backward).
    """
    _check_dense("o_a", o_a, 4, "[B, S, H, D]")
    _check_dense("o_b", o_b, 4, "[B, S, H, D]")
    _check_qkv_family((("o_a", o_a), ("o_b", o_b)), o_a)
    if o_b.shape != o_a.shape:
        raise _invalid("o_b", f"shape {tuple(o_b.shape)} differs from o_a's {tuple(o_a.shape)}")
    b, s, h, _ = o_a.shape
    lse_dtypes = (torch.float32,) if o_a.device.type == "cuda" else (torch.float32, torch.float64)
    for name, t in (("lse_a", lse_a), ("lse_b", lse_b)):
        _check_dense(name, t, 3, "[B, H, S]")
        if t.device != o_a.device:
            raise _invalid(name, f"is on {t.device}, o_a is on {o_a.device}")
        if t.dtype not in lse_dtypes or t.dtype != lse_a.dtype:
            raise _invalid(name, f"expected dtype float32 (as lse_a), got {t.dtype}", TypeError)
        if tuple(t.shape) != (b, h, s):
            raise _invalid(name, f"expected shape {[b, h, s]} ([B, H, S] of o_a), got {list(t.shape)}")
    _inference_only("merge", (("o_a", o_a), ("o_b", o_b), ("lse_a", lse_a), ("lse_b", lse_b)))
    return torch.ops.flashcore.merge(o_a, lse_a, o_b, lse_b)
