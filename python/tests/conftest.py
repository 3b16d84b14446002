"""Shared helpers: the float64 oracle (torch SDPA in float64 on CPU), the same-dtype naive
implementation that sets the accuracy bar, and the `gpu` marker's skip rule."""

import math

import pytest
import torch
import torch.nn.functional as F

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
    """FlashAttention's bar: error vs float64 <= 2 x the error of a naive same-dtype run + 1e-5."""
    want, _ = reference(q, k, v, mask, scale)
    naive, _ = reference(q, k, v, mask, scale, dtype=q.dtype)
    err, bar = max_err(got, want), 2 * max_err(naive, want) + 1e-5
    assert err <= bar, f"max error {err:.3e} exceeds the bar {bar:.3e}"
