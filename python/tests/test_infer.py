"""The inference-path API on CPU tensors (run in CI without a GPU): window and softcap on
`attention` (values and gradients), `attention_varlen`, `attention_with_kvcache` (contiguous and
paged caches), `merge`, argument validation, the custom ops' checks and torch.compile tracing,
all against the independent float64 oracle in infer_oracle.py."""

import pytest
import torch

import flashcore
from conftest import rand
from infer_oracle import attend, max_err, visible_loops

CAUSAL = {"none": False, "top_left": True, "bottom_right": "bottom_right"}
WINDOWS = [(3, 2), (0, 0), (5, None), (None, 4), (2, -1), (None, None)]


def _tight(got, want):
    assert max_err(got, want) < 1e-9, max_err(got, want)


@pytest.mark.parametrize("causal", list(CAUSAL))
@pytest.mark.parametrize("window", WINDOWS, ids=str)
@pytest.mark.parametrize("softcap", [None, 2.5])
@pytest.mark.parametrize("sq,sk", [(13, 29), (29, 13), (17, 17)])
def test_attention_window_softcap_f64(causal, window, softcap, sq, sk):
    if causal != "none" and window[1] not in (None, -1, 0):
        window = (window[0], 0)
    q, k, v = rand(2, 4, sq, 32), rand(2, 2, sk, 32), rand(2, 2, sk, 32)
    out, lse = flashcore.attention(q, k, v, causal=CAUSAL[causal], window=window, softcap=softcap, return_lse=True)
    vis = visible_loops(sq, sk, causal, window)
    for b in range(2):
        want, want_lse = attend(q[b], k[b], v[b], vis, softcap=softcap)
        _tight(out[b], want)
        assert torch.equal(torch.isinf(lse[b]), torch.isinf(want_lse))
        fin = torch.isfinite(want_lse)
        _tight(lse[b][fin], want_lse[fin])


def test_attention_window_bshd_and_scale():
    q, k, v = rand(1, 20, 4, 16), rand(1, 30, 1, 16), rand(1, 30, 1, 16)
    out = flashcore.attention(q, k, v, window=(4, 1), softcap=1.5, scale=0.3, layout="bshd")
    want, _ = attend(q[0].transpose(0, 1), k[0].transpose(0, 1), v[0].transpose(0, 1),
                     visible_loops(20, 30, "none", (4, 1)), scale=0.3, softcap=1.5)
    _tight(out[0].transpose(0, 1), want)


@pytest.mark.parametrize("causal,window,softcap", [(False, (3, 2), None), (True, (4, 0), 3.0), ("bottom_right", None, 2.0),
                                                  (False, (None, 1), 1.0)])
def test_attention_window_softcap_gradcheck(causal, window, softcap):
    q, k, v = (rand(1, 2, s, 16, requires_grad=True) for s in (7, 9, 9))
    fn = lambda q, k, v: flashcore.attention(q, k, v, causal=causal, window=window, softcap=softcap)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v))


def test_attention_window_gradients_vs_oracle():
    q, k, v = rand(1, 4, 11, 16, requires_grad=True), rand(1, 2, 15, 16, requires_grad=True), rand(1, 2, 15, 16, requires_grad=True)
    dout = rand(1, 4, 11, 16)
    flashcore.attention(q, k, v, window=(2, 3), softcap=1.7).backward(dout)
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    want, _ = attend(leaves[0][0], leaves[1][0], leaves[2][0], visible_loops(11, 15, "none", (2, 3)), softcap=1.7)
    want.backward(dout[0])
    for got, ref in zip((q.grad, k.grad, v.grad), leaves):
        _tight(got, ref.grad)


@pytest.mark.parametrize("causal,window", [(False, None), (True, None), ("bottom_right", (5, None)), (False, (3, 2))],
                         ids=str)
@pytest.mark.parametrize("sq,sk", [(13, 29), (29, 13)])
def test_attention_sinks_f64(causal, window, sq, sk):
    q, k, v = rand(2, 4, sq, 32), rand(2, 2, sk, 32), rand(2, 2, sk, 32)
    sinks = torch.tensor([0.5, float("-inf"), 3.0, -2.0], dtype=torch.float64)
    out, lse = flashcore.attention(q, k, v, causal=causal, window=window, sinks=sinks, return_lse=True)
    name = {False: "none", True: "top_left", "bottom_right": "bottom_right"}[causal]
    vis = visible_loops(sq, sk, name, window or (None, None))
    # Rows that see no key: only the sink's weight, so O = 0 and LSE = sink (head 1 has none: skip).
    rows = vis.any(-1)
    for b in range(2):
        want, want_lse = attend(q[b], k[b], v[b], vis, sinks=sinks)
        for hh in range(4):
            r = rows if hh == 1 else torch.ones_like(rows)
            _tight(out[b, hh][r], want[hh][r])
            _tight(lse[b, hh][r], want_lse[hh][r])
    # The sink lowers every row's weights: out differs from attention without it.
    assert max_err(out, flashcore.attention(q, k, v, causal=causal, window=window)) > 1e-3


def test_attention_sinks_gradcheck():
    q, k, v = (rand(1, 2, s, 16, requires_grad=True) for s in (7, 9, 9))
    sinks = torch.tensor([0.3, 1.7], dtype=torch.float64, requires_grad=True)
    fn = lambda q, k, v, s: flashcore.attention(q, k, v, causal="bottom_right", window=(4, None), sinks=s)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v, sinks))
    # A gradient into the returned LSE too.
    fn2 = lambda q, k, v, s: flashcore.attention(q, k, v, sinks=s, return_lse=True)  # noqa: E731
    assert torch.autograd.gradcheck(lambda *a: sum(t.sum() for t in fn2(*a)), (q, k, v, sinks))


def test_kvcache_and_varlen_sinks_f64():
    b, h, hkv, d = 2, 4, 2, 16
    sinks = torch.tensor([1.0, -1.0, 4.0, 0.0], dtype=torch.float64)
    q, kc, vc = rand(b, 3, h, d), rand(b, 20, hkv, d), rand(b, 20, hkv, d)
    lengths = [20, 9]
    out, lse = flashcore.attention_with_kvcache(q, kc, vc, torch.tensor(lengths, dtype=torch.int32), causal=True,
                                                sinks=sinks, return_lse=True)
    for i, n in enumerate(lengths):
        vis = visible_loops(3, n, "bottom_right")
        want, want_lse = attend(q[i].transpose(0, 1), kc[i, :n].transpose(0, 1), vc[i, :n].transpose(0, 1), vis,
                                sinks=sinks)
        _tight(out[i].transpose(0, 1), want)
        assert max_err(lse[i], want_lse) < 1e-5  # the cache path's LSE is fp32
    lq, lk = [3, 5], [7, 4]
    qv, kv, vv = rand(sum(lq), h, d), rand(sum(lk), hkv, d), rand(sum(lk), hkv, d)
    cq, ck = _lengths_to_cu(lq), _lengths_to_cu(lk)
    out = flashcore.attention_varlen(qv, kv, vv, cq, ck, 5, 7, sinks=sinks)
    for i in range(2):
        q0, q1, k0, k1 = int(cq[i]), int(cq[i + 1]), int(ck[i]), int(ck[i + 1])
        want, _ = attend(qv[q0:q1].transpose(0, 1), kv[k0:k1].transpose(0, 1), vv[k0:k1].transpose(0, 1),
                         visible_loops(lq[i], lk[i]), sinks=sinks)
        _tight(out[q0:q1].transpose(0, 1), want)


@pytest.mark.parametrize("sinks,exc,match", [
    (torch.zeros(3, dtype=torch.float64), ValueError, "shape"),
    (torch.zeros(4, dtype=torch.int32), TypeError, "float"),
    ([0.0] * 4, TypeError, "Tensor"),
])
def test_attention_sinks_errors(sinks, exc, match):
    q, k, v = rand(1, 4, 5, 16), rand(1, 2, 5, 16), rand(1, 2, 5, 16)
    with pytest.raises(exc, match="sinks"):
        flashcore.attention(q, k, v, sinks=sinks)
    with pytest.raises(exc, match=match):
        flashcore.attention(q, k, v, sinks=sinks)


def _lengths_to_cu(lengths):
    return torch.tensor([0] + torch.tensor(lengths).cumsum(0).tolist(), dtype=torch.int32)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("window,softcap", [(None, None), ((3, 1), None), ((2, None), 4.0)], ids=str)
def test_varlen_f64(causal, window, softcap):
    if causal and window and window[1]:
        window = (window[0], 0)
    lq, lk = [5, 0, 17, 1, 9], [7, 3, 17, 20, 4]
    h, hkv, d = 4, 2, 32
    q, k, v = rand(sum(lq), h, d), rand(sum(lk), hkv, d), rand(sum(lk), hkv, d)
    cq, ck = _lengths_to_cu(lq), _lengths_to_cu(lk)
    out, lse = flashcore.attention_varlen(q, k, v, cq, ck, max(lq), max(lk), causal=causal, window=window,
                                          softcap=softcap, return_lse=True)
    assert out.shape == q.shape and lse.shape == (h, sum(lq))
    for b in range(len(lq)):
        q0, q1, k0, k1 = int(cq[b]), int(cq[b + 1]), int(ck[b]), int(ck[b + 1])
        vis = visible_loops(lq[b], lk[b], "bottom_right" if causal else "none", window or (None, None))
        want, want_lse = attend(q[q0:q1].transpose(0, 1), k[k0:k1].transpose(0, 1), v[k0:k1].transpose(0, 1), vis,
                                softcap=softcap)
        _tight(out[q0:q1].transpose(0, 1), want)
        assert torch.equal(torch.isinf(lse[:, q0:q1]), torch.isinf(want_lse))


def _paged(k_dense, lengths, page):
    """Scatters each sequence's first lengths[b] keys of k_dense [B, S, Hkv, D] into a shuffled pool."""
    b, s, hkv, d = k_dense.shape
    max_pages = -(-s // page)
    pool_pages = b * max_pages + 3
    order = torch.randperm(pool_pages)
    table = order[: b * max_pages].view(b, max_pages).to(torch.int32)
    pool = rand(pool_pages, page, hkv, d)  # pages not in use hold noise
    for i in range(b):
        for p in range(-(-lengths[i] // page)):
            rows = k_dense[i, p * page: (p + 1) * page]
            pool[int(table[i, p]), : rows.shape[0]] = rows
    return pool, table


@pytest.mark.parametrize("paged", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("sq", [1, 4])
def test_kvcache_f64(paged, causal, sq):
    b, h, hkv, d, s_cache, page = 3, 8, 2, 32, 48, 16
    lengths = [0, 17, 48] if sq == 1 else [4, 17, 40]
    q = rand(b, sq, h, d)
    kc, vc = rand(b, s_cache, hkv, d), rand(b, s_cache, hkv, d)
    seqlens = torch.tensor(lengths, dtype=torch.int32)
    if paged:
        kp, table = _paged(kc, lengths, page)
        vp, _ = _paged(vc, lengths, page)
        # The same table for both: rebuild v's pool on k's page order.
        vp = torch.empty_like(kp).copy_(kp)
        for i in range(b):
            for p in range(-(-lengths[i] // page)):
                rows = vc[i, p * page: (p + 1) * page]
                vp[int(table[i, p]), : rows.shape[0]] = rows
        out, lse = flashcore.attention_with_kvcache(q, kp, vp, seqlens, table, causal=causal, window=(9, None),
                                                    softcap=3.0, return_lse=True)
    else:
        out, lse = flashcore.attention_with_kvcache(q, kc, vc, seqlens, causal=causal, window=(9, None), softcap=3.0,
                                                    return_lse=True)
    assert out.shape == q.shape and lse.shape == (b, h, sq)
    for i, n in enumerate(lengths):
        vis = visible_loops(sq, n, "bottom_right" if causal else "none", (9, None))
        want, want_lse = attend(q[i].transpose(0, 1), kc[i, :n].transpose(0, 1), vc[i, :n].transpose(0, 1), vis,
                                softcap=3.0)
        _tight(out[i].transpose(0, 1), want)
        assert torch.equal(torch.isinf(lse[i]), torch.isinf(want_lse))


def test_kvcache_int_seqlens_equals_tensor():
    q, kc, vc = rand(2, 1, 4, 16), rand(2, 10, 4, 16), rand(2, 10, 4, 16)
    a = flashcore.attention_with_kvcache(q, kc, vc, 7)
    c = flashcore.attention_with_kvcache(q, kc, vc, torch.tensor([7, 7], dtype=torch.int32))
    assert torch.equal(a, c)


def test_merge_equals_attention_over_the_union():
    q, k, v = rand(2, 4, 6, 16), rand(2, 4, 20, 16), rand(2, 4, 20, 16)
    t = lambda x: x.transpose(1, 2)  # noqa: E731
    o_a, l_a = flashcore.attention(t(q), t(k[:, :, :8]), t(v[:, :, :8]), layout="bshd", return_lse=True)
    o_b, l_b = flashcore.attention(t(q), t(k[:, :, 8:]), t(v[:, :, 8:]), layout="bshd", return_lse=True)
    o, lse = flashcore.merge(o_a, l_a.float(), o_b, l_b.float())
    want, want_lse = flashcore.attention(q, k, v, return_lse=True)
    assert max_err(o, t(want)) < 1e-6 and max_err(lse, want_lse) < 1e-5


def test_merge_empty_rows():
    o_a, o_b = rand(1, 3, 2, 16), rand(1, 3, 2, 16)
    l_a = torch.tensor([[[float("-inf"), 0.5, float("-inf")]] * 2])
    l_b = torch.tensor([[[float("-inf"), float("-inf"), 1.0]] * 2])
    o, lse = flashcore.merge(o_a, l_a, o_b, l_b)
    assert torch.equal(o[:, 0], torch.zeros_like(o[:, 0])) and torch.isneginf(lse[..., 0]).all()
    _tight(o[:, 1], o_a[:, 1])
    _tight(o[:, 2], o_b[:, 2])
    assert not torch.isnan(o).any()


# ---- validation: every bad argument is a ValueError / TypeError naming it ----


def _qkv():
    return rand(1, 4, 8, 16), rand(1, 2, 8, 16), rand(1, 2, 8, 16)


@pytest.mark.parametrize("kwargs,arg,exc", [
    (dict(causal=True, window=(2, 1)), "window", ValueError),
    (dict(window=(2,)), "window", TypeError),
    (dict(window=(2, -3)), "window", ValueError),
    (dict(window=(2.5, 1)), "window", TypeError),
    (dict(softcap=-1.0), "softcap", ValueError),
    (dict(softcap="x"), "softcap", TypeError),
])
def test_attention_option_errors(kwargs, arg, exc):
    with pytest.raises(exc) as e:
        flashcore.attention(*_qkv(), **kwargs)
    assert e.value.arg == arg


def _varlen_args():
    q, k = rand(10, 4, 16), rand(12, 2, 16)
    cu = torch.tensor([0, 4, 10], dtype=torch.int32)
    cuk = torch.tensor([0, 5, 12], dtype=torch.int32)
    return dict(q=q, k=k, v=k.clone(), cu_seqlens_q=cu, cu_seqlens_k=cuk, max_seqlen_q=6, max_seqlen_k=7)


@pytest.mark.parametrize("over,arg,exc", [
    (dict(cu_seqlens_q=torch.tensor([0, 4, 10])), "cu_seqlens_q", TypeError),
    (dict(cu_seqlens_k=torch.tensor([0, 12], dtype=torch.int32)), "cu_seqlens_k", ValueError),
    (dict(cu_seqlens_q=torch.tensor([0, 7, 3], dtype=torch.int32)), "cu_seqlens_q", ValueError),
    (dict(max_seqlen_q=5), "max_seqlen_q", ValueError),
    (dict(max_seqlen_k=7.0), "max_seqlen_k", TypeError),
    (dict(q=rand(10, 3, 16)), "k", ValueError),
    (dict(q=rand(10, 4, 24), k=rand(12, 2, 24), v=rand(12, 2, 24)), "q", ValueError),
    (dict(q=rand(1, 10, 4, 16)), "q", ValueError),
    (dict(v=rand(12, 2, 16).float()), "v", TypeError),
    (dict(causal="top_left"), "causal", TypeError),
])
def test_varlen_errors(over, arg, exc):
    args = _varlen_args()
    kw = {"causal": over.pop("causal")} if "causal" in over else {}
    args.update(over)
    with pytest.raises(exc) as e:
        flashcore.attention_varlen(**args, **kw)
    assert e.value.arg == arg


def _cache_args(paged=False):
    q = rand(2, 1, 4, 16)
    if paged:
        kc = rand(5, 16, 2, 16)
        return dict(q=q, k_cache=kc, v_cache=kc.clone(), cache_seqlens=torch.tensor([3, 20], dtype=torch.int32),
                    block_table=torch.tensor([[0, 1], [2, 3]], dtype=torch.int32))
    kc = rand(2, 20, 2, 16)
    return dict(q=q, k_cache=kc, v_cache=kc.clone(), cache_seqlens=torch.tensor([3, 20], dtype=torch.int32))


@pytest.mark.parametrize("paged,over,arg,exc", [
    (False, dict(cache_seqlens=torch.tensor([3, 20])), "cache_seqlens", TypeError),
    (False, dict(cache_seqlens=torch.tensor([3, 21], dtype=torch.int32)), "cache_seqlens", ValueError),
    (False, dict(cache_seqlens=torch.tensor([3], dtype=torch.int32)), "cache_seqlens", ValueError),
    (False, dict(cache_seqlens=25), "cache_seqlens", ValueError),
    (False, dict(k_cache=rand(3, 20, 2, 16), v_cache=rand(3, 20, 2, 16)), "k_cache", ValueError),
    (False, dict(k_cache=rand(2, 20, 3, 16), v_cache=rand(2, 20, 3, 16)), "k_cache", ValueError),
    (False, dict(v_cache=rand(2, 19, 2, 16)), "v_cache", ValueError),
    (False, dict(q=rand(2, 4, 16)), "q", ValueError),
    (True, dict(block_table=torch.tensor([[0, 1], [2, 3]])), "block_table", TypeError),
    (True, dict(block_table=torch.tensor([[0, 1]], dtype=torch.int32)), "block_table", ValueError),
    (True, dict(block_table=torch.tensor([[0, 1], [2, 7]], dtype=torch.int32)), "block_table", ValueError),
    (True, dict(k_cache=rand(5, 24, 2, 16), v_cache=rand(5, 24, 2, 16)), "k_cache", ValueError),
    (True, dict(num_splits=-1), "num_splits", ValueError),
    (True, dict(causal=True, window=(4, 2)), "window", ValueError),
])
def test_kvcache_errors(paged, over, arg, exc):
    args = _cache_args(paged)
    args.update(over)
    with pytest.raises(exc) as e:
        flashcore.attention_with_kvcache(**args)
    assert e.value.arg == arg


def test_inference_paths_refuse_gradients():
    args = _cache_args()
    args["q"] = args["q"].requires_grad_()
    with pytest.raises(ValueError) as e:
        flashcore.attention_with_kvcache(**args)
    assert e.value.arg == "q"
    va = _varlen_args()
    va["k"] = va["k"].requires_grad_()
    with pytest.raises(ValueError) as e:
        flashcore.attention_varlen(**va)
    assert e.value.arg == "k"
    with torch.no_grad():
        flashcore.attention_varlen(**va)


@pytest.mark.parametrize("over,arg,exc", [
    (dict(lse_a=torch.zeros(1, 2, 3, dtype=torch.float16)), "lse_a", TypeError),
    (dict(lse_b=torch.zeros(1, 3, 2)), "lse_b", ValueError),
    (dict(o_b=rand(1, 3, 2, 32)), "o_b", ValueError),
    (dict(o_b=rand(1, 3, 2, 16).float()), "o_b", TypeError),
])
def test_merge_errors(over, arg, exc):
    args = dict(o_a=rand(1, 3, 2, 16), lse_a=torch.zeros(1, 2, 3), o_b=rand(1, 3, 2, 16), lse_b=torch.zeros(1, 2, 3))
    args.update(over)
    with pytest.raises(exc) as e:
        flashcore.merge(**args)
    assert e.value.arg == arg


# ---- custom ops: torch.library's checks (schema, fake impls) and torch.compile tracing ----


def test_opcheck_inference_ops():
    a = _varlen_args()
    torch.library.opcheck(torch.ops.flashcore.fwd_varlen.default, (
        a["q"], a["k"], a["v"], a["cu_seqlens_q"], a["cu_seqlens_k"], 6, 7, True, 0.25, 3, -1, 2.0, True))
    c = _cache_args()
    torch.library.opcheck(torch.ops.flashcore.fwd_kvcache.default, (
        c["q"], c["k_cache"], c["v_cache"], c["cache_seqlens"], None, True, 0.25, -1, -1, 0.0, 0, True))
    p = _cache_args(paged=True)
    torch.library.opcheck(torch.ops.flashcore.fwd_kvcache.default, (
        p["q"], p["k_cache"], p["v_cache"], p["cache_seqlens"], p["block_table"], False, 0.25, 5, -1, 0.0, 2, False))
    torch.library.opcheck(torch.ops.flashcore.merge.default, (
        rand(1, 3, 2, 16), torch.randn(1, 2, 3), rand(1, 3, 2, 16), torch.randn(1, 2, 3)))
    q, k, v = _qkv()
    torch.library.opcheck(torch.ops.flashcore.fwd.default, (q, k, v, "none", 0.25, True, True, False, 2, 1, 3.0))


def test_compile_fullgraph_inference_paths():
    torch._dynamo.reset()
    c = _cache_args(paged=True)
    a = _varlen_args()

    def step(c, a):
        o = flashcore.attention_with_kvcache(c["q"], c["k_cache"], c["v_cache"], c["cache_seqlens"], c["block_table"],
                                             causal=True, softcap=5.0)
        ov, lse = flashcore.attention_varlen(a["q"], a["k"], a["v"], a["cu_seqlens_q"], a["cu_seqlens_k"], 6, 7,
                                             window=(2, 2), return_lse=True)
        m, ml = flashcore.merge(o, torch.zeros(2, 4, 1), o, torch.zeros(2, 4, 1))
        return o, ov, lse, m, ml

    want = step(c, a)
    got = torch.compile(step, fullgraph=True)(c, a)
    for w, g in zip(want, got):
        assert torch.equal(w, g)
