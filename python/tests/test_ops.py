"""The custom ops: torch.library's own consistency checks (schema, fake impl, autograd registration)
and torch.compile(fullgraph=True) tracing through them."""

import contextlib

import pytest
import torch

import flashcore
from flashcore import _ops
from conftest import max_err, qkv, rand, reference


@pytest.mark.parametrize("mask", ["none", "causal", "causal_br"])
def test_opcheck_fwd(mask):
    q, k, v = qkv(2, 4, 2, 9, 12, 32, requires_grad=True)
    torch.library.opcheck(torch.ops.flashcore.fwd.default, (q, k, v, mask, 0.25))


def test_opcheck_fwd_bshd_views():
    q, k, v = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in qkv(2, 4, 4, 9, 9, 16))
    torch.library.opcheck(torch.ops.flashcore.fwd.default, (q, k, v, "causal", 0.25))


def test_opcheck_bwd():
    q, k, v = qkv(1, 4, 2, 7, 11, 16)
    out, lse = torch.ops.flashcore.fwd(q, k, v, "causal", 0.25)
    dout, dlse = rand(*out.shape), rand(*lse.shape)
    torch.library.opcheck(torch.ops.flashcore.bwd.default, (dout, q, k, v, out, lse, dlse, "causal", 0.25))
    torch.library.opcheck(torch.ops.flashcore.bwd.default, (dout, q, k, v, out, lse, None, "none", 0.25))


def test_fake_impl_matches_real_layout():
    from torch._subclasses.fake_tensor import FakeTensorMode

    q, k, v = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in qkv(2, 4, 2, 9, 9, 16, dtype=torch.float32))
    real_out, real_lse = torch.ops.flashcore.fwd(q, k, v, "none", 0.25)
    with FakeTensorMode() as mode:
        fq, fk, fv = (mode.from_tensor(t) for t in (q, k, v))
        fake_out, fake_lse = torch.ops.flashcore.fwd(fq, fk, fv, "none", 0.25)
    assert fake_out.stride() == real_out.stride() and fake_out.shape == real_out.shape
    assert fake_lse.stride() == real_lse.stride() and fake_lse.dtype == real_lse.dtype


class Block(torch.nn.Module):
    """A small attention block: projections around flashcore.attention."""

    def __init__(self, e=64, h=4, hkv=2):
        super().__init__()
        self.h, self.hkv, self.d = h, hkv, e // h
        self.q = torch.nn.Linear(e, e, dtype=torch.float64)
        self.kv = torch.nn.Linear(e, 2 * hkv * self.d, dtype=torch.float64)
        self.o = torch.nn.Linear(e, e, dtype=torch.float64)

    def forward(self, x):
        b, s, e = x.shape
        q = self.q(x).view(b, s, self.h, self.d)
        k, v = self.kv(x).view(b, s, 2, self.hkv, self.d).unbind(2)
        return self.o(flashcore.attention(q, k, v, causal=True, layout="bshd").reshape(b, s, e))


def test_compile_fullgraph_forward_and_backward():
    torch._dynamo.reset()
    m = Block()
    x = rand(2, 19, 64)
    eager = m(x)
    eager.square().sum().backward()
    want = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    # aot_eager: Dynamo + AOTAutograd (fake tensors, the autograd formula) without needing Inductor's
    # C++ toolchain; a graph break would raise under fullgraph=True.
    compiled = torch.compile(m, fullgraph=True, backend="aot_eager")
    got = compiled(x)
    got.square().sum().backward()
    assert max_err(got, eager) < 1e-12
    for p, w in zip(m.parameters(), want):
        assert max_err(p.grad, w) < 1e-10


def test_compile_fullgraph_counts_no_graph_break():
    torch._dynamo.reset()
    q, k, v = qkv(1, 4, 2, 8, 8, 32)
    fn = lambda q, k, v: flashcore.attention(q, k, v, causal="bottom_right") * 2  # noqa: E731
    explain = torch._dynamo.explain(fn)(q, k, v)
    assert explain.graph_break_count == 0 and explain.graph_count == 1
    want, _ = reference(q, k, v, "causal_br")
    assert max_err(torch.compile(fn, fullgraph=True, backend="aot_eager")(q, k, v), 2 * want) < 1e-12


def test_compile_inductor_cpu():
    torch._dynamo.reset()
    q, k, v = qkv(1, 4, 4, 8, 8, 32, dtype=torch.float32)
    fn = torch.compile(lambda q, k, v: flashcore.attention(q, k, v).sum(-1), fullgraph=True)
    try:
        got = fn(q, k, v)
    except Exception as e:  # no C++ toolchain for Inductor's CPU backend on this machine
        if "compiler" in str(e).lower() or "cxx" in str(e).lower():
            pytest.skip(f"Inductor CPU backend unavailable: {str(e).splitlines()[0]}")
        raise
    assert max_err(got, reference(q, k, v)[0].sum(-1)) < 1e-5


def test_backward_seam_is_one_function():
    # On CPU the backward op is _ops._backward_impl (CUDA calls go to the native kernels instead).
    calls = []
    orig = _ops._backward_impl

    def spy(*a):
        calls.append(a[7])  # the mask
        return orig(*a)

    _ops._backward_impl = spy
    try:
        q, k, v = qkv(1, 2, 2, 4, 4, 16, requires_grad=True)
        flashcore.attention(q, k, v, causal=True).sum().backward()
    finally:
        _ops._backward_impl = orig
    assert calls == ["causal"]


@pytest.mark.parametrize("keep_lse,lse_grad", [(False, False), (True, False), (True, True)])
def test_opcheck_fwd_lse_modes(keep_lse, lse_grad):
    q, k, v = qkv(1, 4, 2, 7, 9, 16, requires_grad=True)
    torch.library.opcheck(torch.ops.flashcore.fwd.default, (q, k, v, "causal_br", 0.25, keep_lse, lse_grad, True))


def test_opcheck_bwd_deterministic_and_layouts():
    packed = rand(2, 9, 3, 4, 16)
    q, k, v = (t.transpose(1, 2) for t in packed.unbind(2))  # views of one fused buffer: not dense
    out, lse = torch.ops.flashcore.fwd(q, k, v, "none", 0.25)
    dout = rand(*out.shape)
    torch.library.opcheck(torch.ops.flashcore.bwd.default, (dout, q, k, v, out, lse, None, "none", 0.25, True))


def test_lse_is_skipped_without_grad_and_return_lse():
    q, k, v = qkv(1, 2, 2, 5, 5, 16)
    out, lse = torch.ops.flashcore.fwd(q, k, v, "none", 0.25, keep_lse=False)
    assert lse.numel() == 0 and max_err(out, reference(q, k, v, scale=0.25)[0]) < 1e-12
    with torch.no_grad():
        _, lse = flashcore.attention(q, k, v, return_lse=True)
    assert lse.shape == (1, 2, 5)


def _bwd_calls(fn):
    """Runs fn and returns the dlse argument of each recompute-backward call."""
    calls = []
    orig = _ops._backward_impl

    def spy(*a):
        calls.append(a[6])
        return orig(*a)

    _ops._backward_impl = spy
    try:
        fn()
    finally:
        _ops._backward_impl = orig
    return calls


def test_lse_gradient_only_when_the_lse_is_returned_and_used():
    q, k, v = qkv(1, 2, 2, 6, 7, 16, requires_grad=True)
    # Not returned: the LSE is non-differentiable; the backward sees no LSE gradient.
    assert _bwd_calls(lambda: flashcore.attention(q, k, v).sum().backward()) == [None]
    # Returned but unused: None too (gradients are not materialized as zeros).
    assert _bwd_calls(lambda: flashcore.attention(q, k, v, return_lse=True)[0].sum().backward()) == [None]
    # Used in the loss: the LSE gradient is passed on, and the result matches float64 autograd.
    for t in (q, k, v):
        t.grad = None
    calls = _bwd_calls(lambda: sum(x.sum() for x in flashcore.attention(q, k, v, return_lse=True)).backward())
    assert len(calls) == 1 and calls[0] is not None
    from conftest import attention_math

    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    sum(x.sum() for x in attention_math(*leaves)).backward()
    for a, b in zip((q, k, v), leaves):
        assert max_err(a.grad, b.grad) < 1e-10
    # Only the LSE used: the output's gradient is None and is taken as zero.
    for t in (q, k, v):
        t.grad = None
    flashcore.attention(q, k, v, return_lse=True)[1].sum().backward()
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    attention_math(*leaves)[1].sum().backward()
    assert v.grad is not None and not v.grad.any() and leaves[2].grad is None  # the LSE does not depend on v
    for a, b in zip((q, k), leaves):
        assert max_err(a.grad, b.grad) < 1e-10


def test_lse_not_returned_is_non_differentiable():
    q, k, v = qkv(1, 2, 2, 4, 4, 16, requires_grad=True)
    out, lse = torch.ops.flashcore.fwd(q, k, v, "none", 0.25, True, False)
    assert out.requires_grad and not lse.requires_grad
    out, lse = torch.ops.flashcore.fwd(q, k, v, "none", 0.25, True, True)
    assert lse.requires_grad


def test_grad_like_keeps_dense_layouts_and_makes_views_contiguous():
    x = rand(2, 5, 3, 16)  # BSHD memory
    for t in (x.transpose(1, 2), x, x.permute(1, 2, 0, 3), rand(1, 1, 5, 16)):
        assert _ops.grad_like(t).stride() == t.stride()
    packed = rand(2, 5, 3, 4, 16)
    q = packed[:, :, 0].transpose(1, 2)  # a view of a fused QKV buffer: not dense
    g = _ops.grad_like(q)
    assert g.shape == q.shape and g.stride() == (5 * 4 * 16, 16, 4 * 16, 1)  # contiguous BSHD


def test_grad_layouts_match_between_real_and_fake():
    from torch._subclasses.fake_tensor import FakeTensorMode

    packed = rand(2, 9, 3, 4, 16)
    q, k, v = packed[:, :, 0].transpose(1, 2), rand(2, 9, 2, 16).transpose(1, 2), rand(2, 2, 9, 16)
    out, lse = torch.ops.flashcore.fwd(q, k, v, "causal", 0.25)
    dout = rand(*out.shape)
    real = torch.ops.flashcore.bwd(dout, q, k, v, out, lse, None, "causal", 0.25)
    with FakeTensorMode() as mode:
        f = [mode.from_tensor(t) for t in (dout, q, k, v, out, lse)]
        fake = torch.ops.flashcore.bwd(*f, None, "causal", 0.25)
    for r, fk in zip(real, fake):
        assert r.stride() == fk.stride() and r.shape == fk.shape
    assert real[1].stride() == k.stride() and real[2].stride() == v.stride()


def test_kernel_ready():
    x = torch.empty(2, 4, 8, 64, dtype=torch.float16)
    assert _ops.kernel_ready(x) and _ops.kernel_ready(x.transpose(1, 2).contiguous().transpose(1, 2))
    assert not _ops.kernel_ready(torch.ones(()).expand(2, 4, 8, 64))  # head-dim stride 0
    assert not _ops.kernel_ready(torch.empty(2, 4, 8, 68, dtype=torch.float16)[..., 4:])  # misaligned
    assert _ops.kernel_ready(torch.ones(64, dtype=torch.float16).expand(2, 4, 8, 64))  # broadcast rows


def test_recompute_reason():
    from types import SimpleNamespace

    cuda = lambda d: SimpleNamespace(device=torch.device("cuda"), shape=(1, 1, 1, d))  # noqa: E731
    assert _ops.recompute_reason(rand(1, 1, 1, 16)) == "cpu"
    assert _ops.recompute_reason(cuda(128)) is None
    assert _ops.recompute_reason(cuda(144)) == "head_dim"
    # Windows, softcaps and an LSE gradient all run the native backward (head dims it serves).
    assert set(_ops.RECOMPUTE_REASONS) == {"head_dim"}


def test_supported_backward_head_dim_mirrors_native():
    from flashcore import _native

    for d in range(0, 300):
        assert _ops.supported_backward_head_dim(d) == _native.supported_backward_head_dim(d), d


def test_supported_page_size_mirrors_native():
    from flashcore import _native
    from flashcore.functional import supported_page_size

    for p in range(0, 600):
        assert supported_page_size(p) == _native.supported_page_size(p), p


def test_deterministic_reaches_the_backward():
    q, k, v = qkv(1, 2, 2, 4, 4, 16, requires_grad=True)
    assert flashcore.attention(q, k, v).grad_fn.deterministic is False
    assert flashcore.attention(q, k, v, deterministic=True).grad_fn.deterministic is True
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        assert flashcore.attention(q, k, v).grad_fn.deterministic is True
    finally:
        torch.use_deterministic_algorithms(prev)


def test_compiled_backward_sees_no_lse_gradient_unless_the_lse_leaves_the_graph():
    torch._dynamo.reset()
    q, k, v = qkv(1, 2, 2, 6, 7, 16, requires_grad=True)
    f1 = torch.compile(lambda q, k, v: flashcore.attention(q, k, v).sum(), fullgraph=True, backend="aot_eager")
    assert _bwd_calls(lambda: f1(q, k, v).backward()) == [None]
    f2 = torch.compile(
        lambda q, k, v: flashcore.attention(q, k, v, return_lse=True)[0].sum(), fullgraph=True, backend="aot_eager"
    )
    assert _bwd_calls(lambda: f2(q, k, v).backward()) == [None]


def test_direct_call_only_where_the_dispatcher_adds_nothing():
    """Eager calls without autograd skip torch's dispatcher (`_ops.direct_call_ok`); a Python
    dispatch mode (here one that records the ops it sees) still sees flashcore::fwd, with the same
    result."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from flashcore import _ops

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    q, k, v = (torch.randn(1, 2, 5, 16, dtype=torch.float64) for _ in range(3))
    assert _ops.direct_call_ok((q, k, v, None))
    direct = flashcore.attention(q, k, v, causal=True)
    with Record() as rec:
        assert not _ops.direct_call_ok((q, k, v))
        dispatched = flashcore.attention(q, k, v, causal=True)
    assert any("flashcore.fwd" in op for op in rec.ops), rec.ops
    assert torch.equal(direct, dispatched)


def test_eager_autograd_skips_the_dispatcher_with_the_same_gradients():
    """Eager calls that need a gradient run under `_ops.AttentionFunction` (no dispatcher, no
    custom-op autograd wrapper); under a dispatch mode they go through flashcore::fwd. Both give the
    same output and the same gradients, sinks included, and a second derivative raises."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from flashcore import _ops

    class Passthrough(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 4, 9, 16, dtype=torch.float64) for _ in range(3))
    k, v = k[:, :2], v[:, :2]  # GQA 4/2
    sinks = torch.randn(4, dtype=torch.float64)
    dout = torch.randn(2, 4, 9, 16, dtype=torch.float64)

    def run(mode):
        leaves = [t.clone().requires_grad_() for t in (q, k, v, sinks)]
        with mode:
            out = flashcore.attention(*leaves[:3], causal=True, sinks=leaves[3], window=(5, 0))
        grads = torch.autograd.grad(out, leaves, dout)
        return out, grads

    direct_out, direct_grads = run(contextlib.nullcontext())
    op_out, op_grads = run(Passthrough())
    fresh = [t.clone().requires_grad_() for t in (q, k, v)]
    assert type(flashcore.attention(*fresh).grad_fn).__name__.startswith("AttentionFunction")
    assert torch.equal(direct_out.detach(), op_out.detach())
    for a, b in zip(direct_grads, op_grads):
        assert torch.equal(a, b)
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    (g,) = torch.autograd.grad(flashcore.attention(*leaves).sum(), leaves[0], create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


def test_compile_fullgraph_with_sinks_forward_and_backward():
    """Attention sinks through torch.compile (Dynamo + AOTAutograd): no graph break, and the values
    and all four gradients (q, k, v, sinks) equal eager's."""
    torch._dynamo.reset()
    q, k, v = qkv(1, 4, 2, 9, 11, 16)
    sinks = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (q, k, v, sinks)]
    fn = lambda q, k, v, s: flashcore.attention(q, k, v, causal="bottom_right", sinks=s)  # noqa: E731
    eager = fn(*leaves)
    want = torch.autograd.grad(eager.square().sum(), leaves)
    leaves2 = [t.detach().clone().requires_grad_() for t in leaves]
    got = torch.compile(fn, fullgraph=True, backend="aot_eager")(*leaves2)
    grads = torch.autograd.grad(got.square().sum(), leaves2)
    assert max_err(got, eager) < 1e-12
    for g, w in zip(grads, want):
        assert max_err(g, w) < 1e-10
