"""Shared helpers: the float64 oracle (torch SDPA in float64 on CPU), the same-dtype naive
implementation that sets the accuracy bar, and the `gpu` marker's skip rule."""

import math

import pytest
import torch
import torch.nn.functional as F

import flashcore._ops

MASKS = {"none": False, "causal": True, "causal_br": "bottom_right"}


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def visible(mask: str, sq: int, sk: int, device="cpu") -> torch.Tensor:
    """[Sq, Sk] bool: may query i see key j."""
    i = torch.arange(sq, device=device)[:, None]
    j = torch.arange(sk, device=device)[None, :]
    if mask == "none":
        return torch.ones(sq, sk, dtype=torch.bool, device=device)
    return j <= i + (0 if mask == "causal" else sk - sq)


def reference(q, k, v, mask="none", scale=None, dtype=torch.float64):
    """Attention in `dtype` on q [B,H,Sq,D], k/v [B,Hkv,Sk,D] through torch SDPA's math; rows that see
    no key give 0 and LSE -inf (flashcore's convention). Returns (out, lse) in `dtype`."""
    q, k, v = (t.to(dtype) for t in (q, k, v))
    sq, sk, d = q.shape[2], k.shape[2], q.shape[3]
    scale = 1 / math.sqrt(d) if scale is None else scale
    vis = visible(mask, sq, sk, q.device)
    g = q.shape[1] // k.shape[1]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=vis, scale=scale, enable_gqa=g > 1)
    out = torch.where(vis.any(-1)[:, None], out, torch.zeros_like(out))
    s = (q @ k.repeat_interleave(g, 1).transpose(-1, -2)) * scale
    lse = torch.logsumexp(s.masked_fill(~vis, float("-inf")), dim=-1)
    return out, lse


def rand(*shape, dtype=torch.float64, device="cpu", requires_grad=False):
    """Fresh random input (the generator is not seeded: each run draws new values)."""
    return torch.randn(*shape, dtype=dtype, device=device, requires_grad=requires_grad)


def qkv(b, h, hkv, sq, sk, d, dtype=torch.float64, device="cpu", requires_grad=False):
    return (
        rand(b, h, sq, d, dtype=dtype, device=device, requires_grad=requires_grad),
        rand(b, hkv, sk, d, dtype=dtype, device=device, requires_grad=requires_grad),
        rand(b, hkv, sk, d, dtype=dtype, device=device, requires_grad=requires_grad),
    )


def max_err(a, b) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max())


def assert_within_bar(got, q, k, v, mask, scale=None):
    """FlashAttention's bar: error vs float64 <= 2 x the error of a naive same-dtype run + 1e-5.

    The naive run is attention_math in the dtype (scores and P rounded to it), as the Rust tests'
    and the bench's. Not torch SDPA in the dtype: that dispatches to a fused kernel accumulating in
    fp32, as accurate as flashcore's (their error ratio's median is 1.0-1.2), so a 2x bar on it
    failed 0.5-3% of fresh draws by chance (bench/NOTES.md, session 16; scripts/gpu/s16_bar_probe.py),
    while against the naive run the ratio stayed at or below 1.54 in 1600 draws."""
    want, _ = reference(q, k, v, mask, scale)
    naive, _ = attention_math(q, k, v, mask, scale, dtype=q.dtype)
    err, bar = max_err(got, want), 2 * max_err(naive, want) + 1e-5
    assert err <= bar, f"max error {err:.3e} exceeds the bar {bar:.3e}"


def attention_math(q, k, v, mask="none", scale=None, dtype=torch.float64):
    """Differentiable attention in `dtype`: the oracle in float64, and in a 16-bit dtype the naive
    implementation whose error sets the bar (scores in the dtype, softmax in fp32, P rounded to the
    dtype, P·V in the dtype). Rows that see no key give 0 and LSE -inf, with zero gradients (no NaN
    from a softmax over nothing). Returns (out, lse)."""
    q, k, v = (t.to(dtype) for t in (q, k, v))
    sq, sk, d = q.shape[2], k.shape[2], q.shape[3]
    scale = 1 / math.sqrt(d) if scale is None else scale
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    vis = visible(mask, sq, sk, q.device)
    seen = vis.any(-1, keepdim=True)
    s = (q @ k.transpose(-1, -2)) * scale
    s = s if dtype == torch.float64 else s.float()
    s = s.masked_fill(~vis, float("-inf")).masked_fill(~seen, 0.0)
    lse = torch.logsumexp(s, -1).masked_fill(~seen[..., 0], float("-inf"))
    p = torch.softmax(s, -1) * seen
    return p.to(dtype) @ v, lse


def reference_grads(q, k, v, dout, mask="none", scale=None, dtype=torch.float64, dlse=None):
    """(dq, dk, dv) of attention_math in `dtype` for the output gradient dout (and optionally the
    LSE gradient dlse); for GQA, dk and dv are summed over each group's query heads."""
    leaves = [t.detach().to(dtype).requires_grad_() for t in (q, k, v)]
    out, lse = attention_math(*leaves, mask=mask, scale=scale, dtype=dtype)
    outs, grads = [out], [dout.to(dtype)]
    if dlse is not None:
        outs.append(lse)
        grads.append(dlse.to(lse.dtype))
    return torch.autograd.grad(outs, leaves, grads)


def assert_grads_within_bar(got, q, k, v, dout, mask="none", scale=None, dlse=None):
    """Each of dq, dk, dv: error vs float64 <= 2 x the naive same-dtype backward's error + 1e-5."""
    want = reference_grads(q, k, v, dout, mask, scale, dlse=dlse)
    naive = reference_grads(q, k, v, dout, mask, scale, dtype=q.dtype, dlse=dlse)
    for name, g, w, n in zip(("dq", "dk", "dv"), got, want, naive):
        assert g.shape == w.shape and g.dtype == q.dtype, name
        assert not torch.isnan(g).any(), f"{name} has NaN"
        err, bar = max_err(g, w), 2 * max_err(n, w) + 1e-5
        assert err <= bar, f"{name}: max error {err:.3e} exceeds the bar {bar:.3e}"


class NativeSpy:
    """Counts native backward launches and recompute-path calls while active."""

    def __enter__(self):
        self.native, self.recompute = 0, 0
        self._n, self._r = flashcore._ops._native_backward, flashcore._ops._backward_impl

        def n(*a):
            self.native += 1
            return self._n(*a)

        def r(*a):
            self.recompute += 1
            return self._r(*a)

        flashcore._ops._native_backward, flashcore._ops._backward_impl = n, r
        return self

    def __exit__(self, *exc):
        flashcore._ops._native_backward, flashcore._ops._backward_impl = self._n, self._r
