"""An independent oracle for the inference paths: visibility by explicit loops, then softmax
attention in float64 (or, for the accuracy bar, naively in a 16-bit dtype), per sequence."""

import math

import torch


def visible_loops(sq, sk, causal="none", window=(None, None)):
    """[Sq, Sk] bool by the definition: diagonal key of query i is i + d, d = 0 for top-left causal,
    Sk - Sq otherwise; keys in [i + d - left, i + d + right] (causal: right = 0), j < Sk."""
    left, right = (None if w is None or w < 0 else w for w in window)
    d = 0 if causal == "top_left" else sk - sq
    if causal != "none":
        right = 0 if right is None else min(right, 0)
    vis = torch.zeros(sq, sk, dtype=torch.bool)
    for i in range(sq):
        for j in range(sk):
            ok = True
            if right is not None and j > i + d + right:
                ok = False
            if left is not None and j < i + d - left:
                ok = False
            vis[i, j] = ok
    return vis


def attend(q, k, v, vis, scale=None, softcap=None, dtype=torch.float64, sinks=None):
    """q [H, Sq, D], k/v [Hkv, Sk, D] -> (out [H, Sq, D] in `dtype`, lse [H, Sq] float64-ish).
    In a 16-bit dtype: scores in the dtype, softcap and softmax in fp32, P rounded to the dtype.
    sinks [H]: one more always-visible logit per head whose value row is 0 (softmax over the keys
    and the sink, the sink's column dropped)."""
    s, v = _logits(q, k, v, scale, softcap, dtype)
    if sinks is not None:
        s = s.masked_fill(~vis.to(q.device), float("-inf"))
        col = sinks.to(device=s.device, dtype=s.dtype).view(-1, 1, 1).expand(s.shape[0], s.shape[1], 1)
        s = torch.cat([s, col], -1)
        p = torch.softmax(s, -1)[..., :-1]
        return p.to(dtype) @ v, torch.logsumexp(s, -1)
    vis = vis.to(q.device)
    seen = vis.any(-1, keepdim=True)
    s = s.masked_fill(~vis, float("-inf")).masked_fill(~seen, 0.0)
    lse = torch.logsumexp(s, -1).masked_fill(~seen[..., 0], float("-inf"))
    p = torch.softmax(s, -1) * seen
    return p.to(dtype) @ v, lse


def _logits(q, k, v, scale, softcap, dtype):
    """The scores softmax sees ([H, Sq, Sk]; fp32 below float64) and v repeated per query head."""
    q, k, v = (t.to(dtype) for t in (q, k, v))
    g = q.shape[0] // k.shape[0]
    k, v = k.repeat_interleave(g, 0), v.repeat_interleave(g, 0)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q @ k.transpose(-1, -2)) * scale
    s = s if dtype == torch.float64 else s.float()
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    return s, v


def max_err(a, b):
    return float((a.detach().double().cpu() - b.detach().double().cpu()).abs().max()) if a.numel() else 0.0


def assert_bar(got, want64, naive):
    """FlashAttention's bar: |got - f64| <= 2 |naive - f64| + 1e-5."""
    err, bar = max_err(got, want64), 2 * max_err(naive, want64) + 1e-5
    assert err <= bar, f"max error {err:.3e} exceeds the bar {bar:.3e}"
