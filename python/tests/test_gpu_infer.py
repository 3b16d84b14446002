"""CUDA tests of the inference paths (marker `gpu`): window / softcap on `attention` (values and
the native backward), attention_varlen, attention_with_kvcache (contiguous, paged, GQA, forced
splits, chunked prefill), merge, CUDA-graph capture and torch.compile of decode; every value
against float64 within FlashAttention's bar (2 x the naive same-dtype error + 1e-5)."""

import warnings

import pytest
import torch

import flashcore
from infer_oracle import assert_bar, attend, max_err, visible_loops

pytestmark = pytest.mark.gpu
DEV = "cuda"
BF16 = torch.bfloat16


def rnd(*shape, dtype=BF16):
    return torch.randn(*shape, device=DEV, dtype=dtype)


def _check(got, q, k, v, vis, softcap=None, sinks=None, lse=None):
    """got/q [H, Sq, D], k/v [Hkv, Sk, D] (one sequence); lse [H, Sq] checked too when given."""
    sinks = None if sinks is None else sinks.cpu()
    want, want_lse = attend(q.cpu(), k.cpu(), v.cpu(), vis, softcap=softcap, sinks=sinks)
    naive, _ = attend(q.cpu(), k.cpu(), v.cpu(), vis, softcap=softcap, dtype=q.dtype, sinks=sinks)
    assert not torch.isnan(got).any()
    assert_bar(got.cpu(), want, naive)
    if lse is not None:
        fin = torch.isfinite(want_lse)
        assert torch.equal(torch.isinf(lse.cpu()), ~fin)
        assert max_err(lse.cpu()[fin], want_lse[fin]) < 1e-3


@pytest.mark.parametrize("causal,window,softcap", [
    (False, (64, 32), None), (True, (100, 0), None), ("bottom_right", (37, None), 20.0), (False, None, 5.0),
    (False, (None, 10), 30.0), (True, None, 15.0),
])
@pytest.mark.parametrize("sq,sk,d", [(300, 1000, 128), (1000, 300, 64), (257, 257, 256)])
@pytest.mark.parametrize("dtype", [torch.float16, BF16])
def test_attention_window_softcap(causal, window, softcap, sq, sk, d, dtype):
    q, k, v = rnd(2, 8, sq, d, dtype=dtype), rnd(2, 2, sk, d, dtype=dtype), rnd(2, 2, sk, d, dtype=dtype)
    out = flashcore.attention(q, k, v, causal=causal, window=window, softcap=softcap)
    name = {False: "none", True: "top_left", "bottom_right": "bottom_right"}[causal]
    vis = visible_loops(sq, sk, name, window or (None, None))
    for b in range(2):
        _check(out[b], q[b], k[b], v[b], vis, softcap)


@pytest.mark.parametrize("causal,window,d,deterministic", [
    (False, (50, 20), 64, False), (True, (100, 0), 128, False), ("bottom_right", (37, None), 64, True),
    (False, (None, 10), 128, False), (False, (0, 0), 96, True),
])
def test_attention_window_backward_native(causal, window, d, deterministic):
    """Windows run the native backward (no recompute warning); gradients against float64 autograd of
    the same math within the bar."""
    import warnings

    sq, sk = 200, 333
    q = rnd(2, 4, sq, d).requires_grad_()
    k, v = (rnd(2, 2, sk, d).requires_grad_() for _ in range(2))
    dout = rnd(2, 4, sq, d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flashcore.attention(q, k, v, causal=causal, window=window, deterministic=deterministic).backward(dout)
    name = {False: "none", True: "top_left", "bottom_right": "bottom_right"}[causal]
    vis = visible_loops(sq, sk, name, window)
    for b in range(2):
        def grads(dtype):
            leaves = [t.detach()[b].cpu().to(dtype).requires_grad_() for t in (q, k, v)]
            o, _ = attend(*leaves, vis, dtype=dtype)
            return torch.autograd.grad(o, leaves, dout[b].cpu().to(dtype))

        for got, w, n in zip((q.grad, k.grad, v.grad), grads(torch.float64), grads(BF16)):
            assert not torch.isnan(got[b]).any()
            assert_bar(got[b].cpu(), w, n)


@pytest.mark.parametrize("d,cap,window", [(64, 10.0, (50, 20)), (128, 2.0, None)], ids=str)
def test_attention_window_softcap_backward(d, cap, window):
    # The native backward serves softcaps (no recompute warning): tanh on the recomputed scores,
    # 1 − tanh² on dS. A cap of 2 keeps the scores in tanh's bend.
    q, k, v = (rnd(1, 4, s, d).requires_grad_() for s in (200, 300, 300))
    dout = rnd(1, 4, 200, d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flashcore.attention(q, k, v, window=window, softcap=cap).backward(dout)
    vis = visible_loops(200, 300, "none", window or (None, None))

    def grads(dtype):
        leaves = [t.detach()[0].cpu().to(dtype).requires_grad_() for t in (q, k, v)]
        o, _ = attend(*leaves, vis, softcap=cap, dtype=dtype)
        return torch.autograd.grad(o, leaves, dout[0].cpu().to(dtype))

    for got, w, n in zip((q.grad, k.grad, v.grad), grads(torch.float64), grads(BF16)):
        assert_bar(got[0].cpu(), w, n)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("window,softcap", [(None, None), ((128, 0), None), ((200, 50), 25.0)], ids=str)
def test_varlen(causal, window, softcap):
    if causal and window:
        window = (window[0], 0)
    lq, lk = [1, 300, 0, 1000, 77], [500, 300, 40, 1000, 200]
    q, k, v = rnd(sum(lq), 8, 128), rnd(sum(lk), 2, 128), rnd(sum(lk), 2, 128)
    cq = torch.tensor([0] + torch.tensor(lq).cumsum(0).tolist(), dtype=torch.int32, device=DEV)
    ck = torch.tensor([0] + torch.tensor(lk).cumsum(0).tolist(), dtype=torch.int32, device=DEV)
    out, lse = flashcore.attention_varlen(q, k, v, cq, ck, max(lq), max(lk), causal=causal, window=window,
                                          softcap=softcap, return_lse=True)
    for b in range(len(lq)):
        q0, q1, k0, k1 = int(cq[b]), int(cq[b + 1]), int(ck[b]), int(ck[b + 1])
        vis = visible_loops(lq[b], lk[b], "bottom_right" if causal else "none", window or (None, None))
        t = lambda x: x.transpose(0, 1)  # noqa: E731
        _check(t(out[q0:q1]), t(q[q0:q1]), t(k[k0:k1]), t(v[k0:k1]), vis, softcap)
        _, want_lse = attend(t(q[q0:q1]).cpu(), t(k[k0:k1]).cpu(), t(v[k0:k1]).cpu(), vis, softcap=softcap)
        fin = torch.isfinite(want_lse)
        assert torch.equal(torch.isinf(lse[:, q0:q1].cpu()), ~fin)
        assert max_err(lse[:, q0:q1].cpu()[fin], want_lse[fin]) < 1e-2


def _make_cache(b, s_cache, hkv, d, page):
    kc, vc = rnd(b, s_cache, hkv, d), rnd(b, s_cache, hkv, d)
    if not page:
        return kc, vc, kc, vc, None
    n = b * s_cache // page
    table = torch.randperm(n, device=DEV).to(torch.int32).view(b, s_cache // page)
    kp, vp = rnd(n, page, hkv, d), rnd(n, page, hkv, d)
    kp[table.flatten().long()] = kc.view(-1, page, hkv, d)
    vp[table.flatten().long()] = vc.view(-1, page, hkv, d)
    return kc, vc, kp, vp, table


@pytest.mark.parametrize("page", [0, 16, 64, 256])
@pytest.mark.parametrize("sq,causal", [(1, False), (1, True), (5, True), (64, True)])
@pytest.mark.parametrize("num_splits", [0, 1, 3])
def test_kvcache(page, sq, causal, num_splits):
    b, h, hkv, d, s_cache = 3, 16, 4, 128, 1024
    kc, vc, kk, vv, table = _make_cache(b, s_cache, hkv, d, page)
    lengths = [max(sq, 1), 517, 1024]
    seqlens = torch.tensor(lengths, dtype=torch.int32, device=DEV)
    q = rnd(b, sq, h, d)
    out, lse = flashcore.attention_with_kvcache(q, kk, vv, seqlens, table, causal=causal, num_splits=num_splits,
                                                return_lse=True)
    for i, n in enumerate(lengths):
        vis = visible_loops(sq, n, "bottom_right" if causal else "none")
        t = lambda x: x.transpose(0, 1)  # noqa: E731
        _check(t(out[i]), t(q[i]), t(kc[i, :n]), t(vc[i, :n]), vis)


@pytest.mark.parametrize("page", [0, 64])
def test_kvcache_window_softcap(page):
    b, h, hkv, d, s_cache = 2, 8, 8, 64, 2048
    kc, vc, kk, vv, table = _make_cache(b, s_cache, hkv, d, page)
    lengths = [2000, 333]
    q = rnd(b, 2, h, d)
    out = flashcore.attention_with_kvcache(q, kk, vv, torch.tensor(lengths, dtype=torch.int32, device=DEV), table,
                                           causal=True, window=(256, 0), softcap=30.0)
    for i, n in enumerate(lengths):
        t = lambda x: x.transpose(0, 1)  # noqa: E731
        _check(t(out[i]), t(q[i]), t(kc[i, :n]), t(vc[i, :n]), visible_loops(2, n, "bottom_right", (256, 0)), 30.0)


@pytest.mark.parametrize("causal,window", [(False, None), (True, None), ("bottom_right", (100, 0))], ids=str)
@pytest.mark.parametrize("dtype", [torch.float16, BF16])
def test_attention_sinks_forward_and_backward(causal, window, dtype):
    """Sinks (one logit per head in every row's denominator) on `attention`: O and LSE against
    float64, and the gradients of q, k, v (native backward: the saved LSE includes the sinks) and
    of the sinks themselves, each within the bar."""
    import warnings

    sq, sk, d, h = 300, 700, 128, 8
    q = rnd(2, h, sq, d, dtype=dtype).requires_grad_()
    k, v = (rnd(2, 2, sk, d, dtype=dtype).requires_grad_() for _ in range(2))
    # Around the rows' LSEs (~5-8 here), so the sinks take a real share of the weight; head 1 none.
    sinks = (torch.randn(h, device=DEV) * 2 + 6).index_fill(0, torch.tensor([1], device=DEV), float("-inf"))
    sinks.requires_grad_()
    dout = rnd(2, h, sq, d, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the native backward serves it (no recompute warning)
        out, lse = flashcore.attention(q, k, v, causal=causal, window=window, sinks=sinks, return_lse=True)
        out.backward(dout)
    name = {False: "none", True: "top_left", "bottom_right": "bottom_right"}[causal]
    vis = visible_loops(sq, sk, name, window or (None, None))
    want_ds, naive_ds = 0.0, 0.0
    for b in range(2):
        _check(out[b].detach(), q[b].detach(), k[b].detach(), v[b].detach(), vis, sinks=sinks.detach(),
               lse=lse[b].detach())

        def grads(dt):
            leaves = [t.detach()[b].cpu().to(dt).requires_grad_() for t in (q, k, v)]
            sk_leaf = sinks.detach().cpu().double().requires_grad_()
            o, _ = attend(*leaves, vis, dtype=dt, sinks=sk_leaf)
            return torch.autograd.grad(o, leaves + [sk_leaf], dout[b].cpu().to(dt))

        w, n = grads(torch.float64), grads(dtype)
        for got, wv, nv in zip((q.grad, k.grad, v.grad), w[:3], n[:3]):
            assert not torch.isnan(got[b]).any()
            assert_bar(got[b].cpu(), wv, nv)
        want_ds, naive_ds = want_ds + w[3], naive_ds + n[3]
    fin = torch.isfinite(sinks.detach().cpu())
    assert_bar(sinks.grad.cpu()[fin], want_ds[fin], naive_ds[fin])


@pytest.mark.parametrize("page,num_splits", [(0, 0), (0, 4), (64, 3), (16, 1)])
def test_kvcache_sinks(page, num_splits):
    b, h, hkv, d, s_cache = 3, 16, 4, 128, 1024
    kc, vc, kk, vv, table = _make_cache(b, s_cache, hkv, d, page)
    lengths = [1, 517, 1024]
    sinks = torch.randn(h, device=DEV) * 2 + 6
    q = rnd(b, 1, h, d)
    out, lse = flashcore.attention_with_kvcache(q, kk, vv, torch.tensor(lengths, dtype=torch.int32, device=DEV),
                                                table, causal=True, num_splits=num_splits, sinks=sinks,
                                                return_lse=True)
    for i, n in enumerate(lengths):
        t = lambda x: x.transpose(0, 1)  # noqa: E731
        _check(t(out[i]), t(q[i]), t(kc[i, :n]), t(vc[i, :n]), visible_loops(1, n, "bottom_right"), sinks=sinks,
               lse=lse[i])


def test_varlen_sinks():
    lq, lk = [1, 300, 77], [500, 300, 200]
    q, k, v = rnd(sum(lq), 8, 64), rnd(sum(lk), 2, 64), rnd(sum(lk), 2, 64)
    cq = torch.tensor([0] + torch.tensor(lq).cumsum(0).tolist(), dtype=torch.int32, device=DEV)
    ck = torch.tensor([0] + torch.tensor(lk).cumsum(0).tolist(), dtype=torch.int32, device=DEV)
    sinks = torch.randn(8, device=DEV) * 2 + 5
    out, lse = flashcore.attention_varlen(q, k, v, cq, ck, max(lq), max(lk), causal=True, window=(64, 0),
                                          sinks=sinks, return_lse=True)
    for b in range(len(lq)):
        q0, q1, k0, k1 = int(cq[b]), int(cq[b + 1]), int(ck[b]), int(ck[b + 1])
        t = lambda x: x.transpose(0, 1)  # noqa: E731
        _check(t(out[q0:q1]), t(q[q0:q1]), t(k[k0:k1]), t(v[k0:k1]),
               visible_loops(lq[b], lk[b], "bottom_right", (64, 0)), sinks=sinks, lse=lse[:, q0:q1])


def test_merge():
    q, k, v = rnd(2, 100, 8, 64), rnd(2, 700, 8, 64), rnd(2, 700, 8, 64)
    o_a, l_a = flashcore.attention(q, k[:, :300], v[:, :300], layout="bshd", return_lse=True)
    o_b, l_b = flashcore.attention(q, k[:, 300:], v[:, 300:], layout="bshd", return_lse=True)
    o, lse = flashcore.merge(o_a, l_a, o_b, l_b)
    full, full_lse = flashcore.attention(q, k, v, layout="bshd", return_lse=True)
    assert max_err(lse, full_lse) < 1e-3
    for b in range(2):
        t = lambda x: x.transpose(0, 1)  # noqa: E731
        _check(t(o[b]), t(q[b]), t(k[b]), t(v[b]), torch.ones(100, 700, dtype=torch.bool))
    neg = torch.full_like(l_a, float("-inf"))
    o0, l0 = flashcore.merge(o_a, neg, o_b, neg)
    assert torch.equal(o0, torch.zeros_like(o0)) and torch.isneginf(l0).all()


def test_decode_cuda_graph_capture():
    b, h, hkv, d, page = 4, 16, 4, 128, 64
    kc, vc, kp, vp, table = _make_cache(b, 2048, hkv, d, page)
    seqlens = torch.tensor([100, 2048, 1, 700], dtype=torch.int32, device=DEV)
    q = rnd(b, 1, h, d)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm-up compiles and loads the kernels outside the capture
        for _ in range(2):
            flashcore.attention_with_kvcache(q, kp, vp, seqlens, table, causal=True)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = flashcore.attention_with_kvcache(q, kp, vp, seqlens, table, causal=True)
    # A decode step: new query, one more key per sequence; the graph reads both from device memory.
    q.copy_(rnd(b, 1, h, d))
    seqlens.add_(1).clamp_(max=2048)
    g.replay()
    torch.cuda.synchronize()
    want = flashcore.attention_with_kvcache(q, kp, vp, seqlens, table, causal=True)
    assert torch.equal(out, want)
    for i, n in enumerate(seqlens.tolist()):
        t = lambda x: x.transpose(0, 1)  # noqa: E731
        _check(t(out[i]), t(q[i]), t(kc[i, :n]), t(vc[i, :n]), visible_loops(1, n, "bottom_right"))


def test_decode_torch_compile():
    torch._dynamo.reset()
    kc, vc, kp, vp, table = _make_cache(2, 512, 2, 64, 16)
    seqlens = torch.tensor([511, 20], dtype=torch.int32, device=DEV)
    q = rnd(2, 1, 8, 64)

    def step(q):
        o, lse = flashcore.attention_with_kvcache(q, kp, vp, seqlens, table, softcap=10.0, return_lse=True)
        return o * 2, lse

    want = step(q)
    got = torch.compile(step, fullgraph=True)(q)
    assert torch.equal(want[0], got[0]) and torch.equal(want[1], got[1])
