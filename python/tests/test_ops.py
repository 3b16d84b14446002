"""The custom ops: torch.library's own consistency checks (schema, fake impl, autograd registration)
and torch.compile(fullgraph=True) tracing through them."""

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
    # The native backward replaces _ops._backward_impl; the op must call it (and nothing else).
    calls = []
    orig = _ops._backward_impl

    def spy(*a):
        calls.append(a[-2])
        return orig(*a)

    _ops._backward_impl = spy
    try:
        q, k, v = qkv(1, 2, 2, 4, 4, 16, requires_grad=True)
        flashcore.attention(q, k, v, causal=True).sum().backward()
    finally:
        _ops._backward_impl = orig
    assert calls == ["causal"]
