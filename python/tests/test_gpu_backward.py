"""The native CUDA backward through autograd (marker `gpu`, skipped without a GPU): dq, dk, dv vs
float64 within FlashAttention's bar (2 x a naive same-dtype backward's error + 1e-5) over dtypes,
head dims, both causal alignments, GQA/MQA, Sq != Sk, odd lengths and strided inputs; layouts of
the gradients; deterministic mode; the recompute cases (head dim > 128, a gradient into the LSE);
streams, CUDA graphs and torch.compile with backward."""

import warnings

import pytest
import torch

import flashcore
from flashcore import _ops
from conftest import MASKS, NativeSpy, assert_grads_within_bar, attention_math, qkv, rand, reference_grads

pytestmark = pytest.mark.gpu
DEV = "cuda"

# (B, H, Hkv, Sq, Sk, D)
SHAPES = [
    (2, 8, 8, 256, 256, 64),
    (1, 8, 2, 300, 1000, 128),  # GQA, Sq < Sk
    (2, 4, 1, 1000, 300, 96),  # MQA, Sq > Sk (bottom-right: rows that see no key)
    (3, 4, 4, 77, 77, 128),  # odd lengths
    (2, 6, 3, 129, 65, 64),
    (2, 4, 2, 1, 513, 16),  # one query row
]


def grads_of(q, k, v, dout, **kw):
    q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
    out = flashcore.attention(q, k, v, **kw)
    out.backward(dout)
    return q.grad, k.grad, v.grad


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "b{}h{}kv{}q{}k{}d{}".format(*s))
@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_grads_vs_float64(shape, mask, dtype):
    b, h, hkv, sq, sk, d = shape
    q, k, v = qkv(b, h, hkv, sq, sk, d, dtype=dtype, device=DEV)
    dout = rand(b, h, sq, d, dtype=dtype, device=DEV)
    with NativeSpy() as spy:
        got = grads_of(q, k, v, dout, causal=MASKS[mask])
    assert (spy.native, spy.recompute) == (1, 0)
    assert_grads_within_bar(got, q, k, v, dout, mask)


@pytest.mark.parametrize("mask", list(MASKS))
def test_grads_bshd_and_packed_qkv_views(mask):
    # One fused [B, S, 3, H, D] buffer: q, k, v are strided views (no copy into the kernel).
    packed = rand(2, 333, 3, 8, 64, dtype=torch.bfloat16, device=DEV, requires_grad=True)
    q, k, v = packed.unbind(2)
    out = flashcore.attention(q, k, v, causal=MASKS[mask], layout="bshd", scale=0.2)
    dout = rand(*out.shape, dtype=torch.bfloat16, device=DEV)
    out.backward(dout)
    t = lambda x: x.detach().transpose(1, 2)  # noqa: E731
    dq, dk, dv = (t(g) for g in packed.grad.unbind(2))
    assert_grads_within_bar((dq, dk, dv), t(q), t(k), t(v), t(dout), mask, scale=0.2)


def test_grads_non_contiguous_inputs_and_dout():
    # BHSD views of wider, padded buffers (row stride 96 elements for D 64) and a transposed dout.
    base = rand(2, 8, 200, 96, dtype=torch.float16, device=DEV)
    q = base[..., :64]
    kvb = rand(2, 2, 300, 2, 80, dtype=torch.float16, device=DEV)
    k, v = kvb[:, :, :, 0, :64], kvb[:, :, :, 1, 16:]
    dout = rand(2, 200, 8, 64, dtype=torch.float16, device=DEV).transpose(1, 2)
    got = grads_of(q, k, v, dout, causal="bottom_right")
    assert_grads_within_bar(got, q, k, v, dout, "causal_br")


def test_expanded_dout_from_sum():
    # loss = out.sum(): autograd hands over an expanded (all-zero-stride) gradient, copied first.
    q, k, v = qkv(2, 4, 2, 100, 130, 64, dtype=torch.bfloat16, device=DEV)
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    flashcore.attention(*leaves, causal=True).sum().backward()
    dout = torch.ones(2, 4, 100, 64, dtype=torch.bfloat16, device=DEV)
    assert_grads_within_bar([t.grad for t in leaves], q, k, v, dout, "causal")


def test_gradient_layouts_follow_the_inputs():
    bshd = rand(2, 64, 4, 64, dtype=torch.bfloat16, device=DEV, requires_grad=True)
    sbhd = rand(64, 2, 4, 64, dtype=torch.bfloat16, device=DEV, requires_grad=True)  # seq-first activations
    bhsd = rand(2, 4, 64, 64, dtype=torch.bfloat16, device=DEV, requires_grad=True)
    q, k, v = bshd.transpose(1, 2), sbhd.permute(1, 2, 0, 3), bhsd
    dq, dk, dv = torch.ops.flashcore.bwd(
        torch.randn_like(bhsd), q.detach(), k.detach(), v.detach(),
        *torch.ops.flashcore.fwd(q.detach(), k.detach(), v.detach(), "none", 0.125), None, "none", 0.125,
    )
    assert dq.stride() == q.stride() and dk.stride() == k.stride() and dv.stride() == v.stride()
    packed = rand(2, 64, 3, 4, 64, dtype=torch.bfloat16, device=DEV)
    pq = packed[:, :, 0].transpose(1, 2)
    assert _ops.grad_like(pq).stride() == (64 * 4 * 64, 64, 4 * 64, 1)  # not dense: contiguous BSHD


@pytest.mark.parametrize("how", ["keyword", "torch_flag"])
def test_deterministic_is_bitwise_reproducible(how):
    # Many key blocks adding into the same dQ rows (GQA, long causal): atomics would reorder them.
    q, k, v = qkv(2, 16, 4, 2048, 2048, 128, dtype=torch.bfloat16, device=DEV)
    dout = rand(2, 16, 2048, 128, dtype=torch.bfloat16, device=DEV)
    prev = torch.are_deterministic_algorithms_enabled()
    if how == "torch_flag":
        torch.use_deterministic_algorithms(True)
    try:
        kw = {"deterministic": True} if how == "keyword" else {}
        runs = [grads_of(q, k, v, dout, causal=True, **kw) for _ in range(3)]
    finally:
        torch.use_deterministic_algorithms(prev)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert torch.equal(a, b)
    assert_grads_within_bar(runs[0], q, k, v, dout, "causal")


def test_deterministic_matches_default_within_bar():
    q, k, v = qkv(1, 8, 8, 1000, 1000, 64, dtype=torch.float16, device=DEV)
    dout = rand(1, 8, 1000, 64, dtype=torch.float16, device=DEV)
    for det in (False, True):
        assert_grads_within_bar(grads_of(q, k, v, dout, deterministic=det), q, k, v, dout, "none")


def test_head_dim_256_uses_the_recompute_path_with_a_warning():
    _ops._WARNED.discard("head_dim")
    q, k, v = qkv(1, 4, 2, 130, 140, 256, dtype=torch.bfloat16, device=DEV)
    dout = rand(1, 4, 130, 256, dtype=torch.bfloat16, device=DEV)
    with NativeSpy() as spy, pytest.warns(UserWarning, match="head dims above 128"):
        got = grads_of(q, k, v, dout, causal=True)
    assert (spy.native, spy.recompute) == (0, 1)
    assert_grads_within_bar(got, q, k, v, dout, "causal")


@pytest.mark.parametrize("d,causal", [(64, True), (128, False)])
def test_lse_gradient_runs_natively(d, causal):
    # dlse enters the prep kernel as D = rowsum(dO ∘ O) − dlse; no recompute, no warning. The
    # LSE's gradient arrives as an expanded view when the loss sums the LSE: copied to fp32 rows.
    mask = "causal" if causal else "none"
    q, k, v = qkv(2, 4, 2, 100, 130, d, dtype=torch.bfloat16, device=DEV)
    dout, dlse = rand(2, 4, 100, d, dtype=torch.bfloat16, device=DEV), rand(2, 4, 100, device=DEV)
    for g in (dlse, torch.full((1, 1, 1), 0.7, device=DEV).expand(2, 4, 100)):
        leaves = [t.detach().requires_grad_() for t in (q, k, v)]
        with NativeSpy() as spy, warnings.catch_warnings():
            warnings.simplefilter("error")
            out, lse = flashcore.attention(*leaves, causal=causal, return_lse=True)
            torch.autograd.backward([out, lse], [dout, g])
        assert (spy.native, spy.recompute) == (1, 0)
        assert_grads_within_bar([t.grad for t in leaves], q, k, v, dout, mask, dlse=g.contiguous())


def test_returned_but_unused_lse_keeps_the_native_path():
    q, k, v = qkv(1, 4, 4, 64, 64, 64, dtype=torch.bfloat16, device=DEV, requires_grad=True)
    with NativeSpy() as spy:
        out, lse = flashcore.attention(q, k, v, return_lse=True)
        out.float().square().sum().backward()
    assert (spy.native, spy.recompute) == (1, 0)


def test_inference_skips_the_lse():
    q, k, v = qkv(1, 4, 4, 64, 64, 64, dtype=torch.bfloat16, device=DEV)
    _, lse = torch.ops.flashcore.fwd(q, k, v, "none", 0.125, keep_lse=False)
    assert lse.numel() == 0
    with torch.no_grad():
        out = flashcore.attention(q, k, v)
    want, _ = attention_math(q, k, v)
    assert float((out.double() - want).abs().max()) < 2e-2


def test_empty_queries_give_zero_dk_dv():
    q, k, v = qkv(1, 2, 2, 0, 5, 64, dtype=torch.bfloat16, device=DEV, requires_grad=True)
    flashcore.attention(q, k, v).sum().backward()
    assert q.grad.shape == q.shape
    assert torch.equal(k.grad, torch.zeros_like(k)) and torch.equal(v.grad, torch.zeros_like(v))


def test_backward_on_a_side_stream():
    q, k, v = qkv(2, 8, 2, 512, 512, 64, dtype=torch.bfloat16, device=DEV)
    dout = rand(2, 8, 512, 64, dtype=torch.bfloat16, device=DEV)
    want = grads_of(q, k, v, dout, causal=True, deterministic=True)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        got = grads_of(q, k, v, dout, causal=True, deterministic=True)
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    for a, b in zip(got, want):
        assert torch.equal(a, b)


class Block(torch.nn.Module):
    """Projections around flashcore.attention (GQA, causal, BSHD)."""

    def __init__(self, e=256, h=4, hkv=2):
        super().__init__()
        self.h, self.hkv, self.d = h, hkv, e // h
        self.q = torch.nn.Linear(e, e)
        self.kv = torch.nn.Linear(e, 2 * hkv * self.d)
        self.o = torch.nn.Linear(e, e)

    def forward(self, x):
        b, s, e = x.shape
        q = self.q(x).view(b, s, self.h, self.d)
        k, v = self.kv(x).view(b, s, 2, self.hkv, self.d).unbind(2)
        return self.o(flashcore.attention(q, k, v, causal=True, layout="bshd").reshape(b, s, e))


def test_torch_compile_module_with_backward():
    torch._dynamo.reset()
    torch.manual_seed(0)
    m = Block().to(DEV, torch.bfloat16)
    x = rand(2, 200, 256, dtype=torch.bfloat16, device=DEV)
    m(x).float().square().mean().backward()
    want = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    compiled = torch.compile(m, fullgraph=True)
    with NativeSpy() as spy:
        compiled(x).float().square().mean().backward()
    assert spy.native == 1 and spy.recompute == 0
    for p, w in zip(m.parameters(), want):
        rel = float((p.grad.float() - w.float()).norm() / (w.float().norm() + 1e-12))
        assert rel < 2e-2, rel


def test_reference_grads_agree_with_autograd_of_sdpa():
    # The oracle itself: float64 gradients of attention_math equal those of torch's SDPA math.
    q, k, v = qkv(1, 4, 2, 33, 47, 64, device=DEV)
    dout = rand(1, 4, 33, 64, device=DEV)
    got = reference_grads(q, k, v, dout, "causal")
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    out = torch.nn.functional.scaled_dot_product_attention(*leaves, is_causal=True, enable_gqa=True)
    want = torch.autograd.grad(out, leaves, dout)
    for a, b in zip(got, want):
        assert float((a - b).abs().max()) < 1e-10


def test_bench_backward_row_validates():
    from flashcore import _bench

    lines = []
    recs = _bench.run(["bwd-edge"], ["flashcore"], only="bwd-s77-d96", timed=False, log=lines.append)
    assert len(recs) == 1, lines
    r = recs[0]
    assert r["mode"] == "bwd" and r["passed"] and r["groups_checked"] >= 1, lines


def test_bench_backward_row_timed_beside_a_peer():
    from flashcore import _bench

    lines = []
    recs = _bench.run(["bwd-edge"], ["flashcore", "sdpa_efficient"], iters=5, only="bwd-bhsd-sq77-sk300-br",
                      log=lines.append)
    fc = [r for r in recs if r["backend"] == "flashcore"]
    assert len(fc) == 1 and fc[0]["passed"] and fc[0]["ms"] > 0 and fc[0]["tflops"] > 0, lines
    assert all(r["mode"] == "bwd" for r in recs)
