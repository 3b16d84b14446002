"""CUDA tests (marker `gpu`, skipped without a GPU): values vs float64 within FlashAttention's bar,
gradients, a non-default stream, CUDA-graph capture, torch.compile, alignment fallback, and one
training step of a small random-weight GPT with patch_pytorch() vs without."""

import pytest
import torch
import torch.nn.functional as F

import flashcore
from flashcore import patch
from conftest import MASKS, NativeSpy, assert_within_bar, max_err, qkv, rand, reference

pytestmark = pytest.mark.gpu
DEV = "cuda"

# (B, H, Hkv, Sq, Sk, D)
SHAPES = [(2, 8, 8, 512, 512, 64), (1, 8, 2, 300, 1000, 128), (2, 4, 1, 1000, 300, 96), (1, 4, 4, 77, 77, 256),
          (3, 2, 2, 1, 513, 16)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "b{}h{}kv{}q{}k{}d{}".format(*s))
@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_values_vs_float64(shape, mask, dtype):
    b, h, hkv, sq, sk, d = shape
    q, k, v = qkv(b, h, hkv, sq, sk, d, dtype=dtype, device=DEV)
    out, lse = flashcore.attention(q, k, v, causal=MASKS[mask], return_lse=True)
    assert out.dtype == dtype and out.device.type == "cuda"
    assert_within_bar(out, q, k, v, mask)
    _, want_lse = reference(q, k, v, mask)
    fin = torch.isfinite(want_lse)
    assert torch.equal(torch.isinf(lse), ~fin)
    assert max_err(lse[fin], want_lse[fin]) < 1e-2


def test_bshd_strided_views_and_scale():
    packed = rand(2, 333, 3, 8, 64, dtype=torch.bfloat16, device=DEV)
    q, k, v = packed.unbind(2)
    out = flashcore.attention(q, k, v, causal=True, scale=0.2, layout="bshd")
    assert out.is_contiguous()  # BSHD q -> BSHD output
    t = lambda x: x.transpose(1, 2)  # noqa: E731
    assert_within_bar(t(out), t(q), t(k), t(v), "causal", scale=0.2)


@pytest.mark.parametrize("mask", list(MASKS))
def test_gradients_vs_float64(mask):
    q, k, v = qkv(2, 8, 2, 200, 300, 64, dtype=torch.bfloat16, device=DEV, requires_grad=True)
    dout = rand(2, 8, 200, 64, dtype=torch.bfloat16, device=DEV)
    flashcore.attention(q, k, v, causal=MASKS[mask]).backward(dout)
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    reference(q64, k64, v64, mask)[0].backward(dout.double())
    qn, kn, vn = (t.detach().clone().requires_grad_() for t in (q, k, v))
    reference(qn, kn, vn, mask, dtype=torch.bfloat16)[0].backward(dout)  # naive bf16 autograd
    for g, n, w in zip((q.grad, k.grad, v.grad), (qn.grad, kn.grad, vn.grad), (q64.grad, k64.grad, v64.grad)):
        assert max_err(g, w) <= 2 * max_err(n, w) + 1e-5


def test_non_default_stream():
    q, k, v = qkv(2, 8, 8, 1024, 1024, 128, dtype=torch.float16, device=DEV)
    want = flashcore.attention(q, k, v, causal=True)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        outs = [flashcore.attention(q, k, v, causal=True) for _ in range(4)]
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    for o in outs:
        assert torch.equal(o, want)


def test_cuda_graph_capture():
    q, k, v = qkv(2, 8, 2, 512, 512, 64, dtype=torch.bfloat16, device=DEV)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm-up: compiles and loads the kernel outside the capture
        for _ in range(2):
            flashcore.attention(q, k, v, causal=True)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = flashcore.attention(q, k, v, causal=True)
    for _ in range(2):
        for t in (q, k, v):
            t.copy_(torch.randn_like(t))
        g.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, flashcore.attention(q, k, v, causal=True))


def test_cuda_graph_capture_with_backward():
    q, k, v = qkv(1, 4, 4, 256, 256, 64, dtype=torch.bfloat16, device=DEV, requires_grad=True)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            flashcore.attention(q, k, v, causal=True).sum().backward()
    torch.cuda.current_stream().wait_stream(s)
    for t in (q, k, v):
        t.grad = None
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        flashcore.attention(q, k, v, causal=True).float().sum().backward()
    g.replay()
    torch.cuda.synchronize()
    got = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    flashcore.attention(q, k, v, causal=True).float().sum().backward()
    for a, t in zip(got, (q, k, v)):
        assert torch.equal(a, t.grad)


def test_torch_compile_inductor():
    torch._dynamo.reset()
    q, k, v = qkv(2, 8, 2, 256, 256, 64, dtype=torch.bfloat16, device=DEV, requires_grad=True)
    fn = lambda q, k, v: (flashcore.attention(q, k, v, causal=True) * 2).float().square().mean()  # noqa: E731
    eager = fn(q, k, v)
    ge = torch.autograd.grad(eager, (q, k, v))
    comp = torch.compile(fn, fullgraph=True)
    got = comp(q, k, v)
    gc = torch.autograd.grad(got, (q, k, v))
    assert max_err(got, eager) < 1e-3
    for a, b in zip(gc, ge):
        assert max_err(a, b) <= 1e-2 * float(b.abs().max()) + 1e-5


def test_bad_cuda_inputs():
    q, k, v = qkv(1, 2, 2, 8, 8, 64, dtype=torch.float32, device=DEV)
    with pytest.raises(TypeError, match="`q`"):
        flashcore.attention(q, k, v)
    qh = q.half()
    with pytest.raises(ValueError, match="`k`"):
        flashcore.attention(qh, k.half().cpu(), v.half().cpu())
    # A misaligned view: the kernel needs 16-byte aligned rows, the Rust checks name the tensor.
    base = rand(1, 2, 8, 64 + 4, dtype=torch.float16, device=DEV)
    with pytest.raises(ValueError, match="`q`"):
        flashcore.attention(base[..., 4:], k.half(), v.half())


def test_patch_falls_back_on_misalignment_and_fp32():
    base = rand(1, 2, 8, 64 + 4, dtype=torch.float16, device=DEV)
    q, k, v = base[..., 4:], *qkv(1, 2, 2, 8, 8, 64, dtype=torch.float16, device=DEV)[1:]
    assert patch.fallback_reason(q, k, v)[0] == "alignment"
    assert patch.fallback_reason(*(t.float() for t in (q, k, v)))[0] == "dtype"
    assert patch.fallback_reason(q, k.cpu(), v.cpu())[0] == "device"


class GPT(torch.nn.Module):
    """A small GPT: token + position embeddings, pre-norm blocks of nn.MultiheadAttention (causal)
    and an MLP, tied output head."""

    def __init__(self, vocab=512, e=256, heads=4, layers=2, ctx=128):
        super().__init__()
        self.tok = torch.nn.Embedding(vocab, e)
        self.pos = torch.nn.Embedding(ctx, e)
        self.blocks = torch.nn.ModuleList(
            torch.nn.TransformerEncoderLayer(e, heads, 4 * e, dropout=0.0, batch_first=True, norm_first=True)
            for _ in range(layers)
        )
        self.norm = torch.nn.LayerNorm(e)

    def forward(self, ids):
        s = ids.shape[1]
        x = self.tok(ids) + self.pos(torch.arange(s, device=ids.device))
        mask = torch.nn.Transformer.generate_square_subsequent_mask(s, device=ids.device, dtype=x.dtype)
        for blk in self.blocks:
            x = blk(x, src_mask=mask, is_causal=True)
        return self.norm(x) @ self.tok.weight.T


def _step(model, ids):
    model.zero_grad()
    logits = model(ids[:, :-1])
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    loss.backward()
    return loss.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def test_gpt_training_step_patched_vs_unpatched():
    torch.manual_seed(1234)
    model = GPT().to(DEV, torch.bfloat16).train()
    ids = torch.randint(0, 512, (4, 129), device=DEV)
    loss0, grads0 = _step(model, ids)
    flashcore.reset_fallback_counts()
    calls = []
    orig = patch.attention
    patch.attention = lambda *a, **kw: calls.append(kw) or orig(*a, **kw)
    try:
        with flashcore.patched(), NativeSpy() as spy:
            loss1, grads1 = _step(model, ids)
    finally:
        patch.attention = orig
    assert len(calls) == 2, flashcore.fallback_counts()  # both layers' attention ran on flashcore
    assert (spy.native, spy.recompute) == (2, 0)  # and both backwards on the native kernels
    assert abs(float(loss1) - float(loss0)) <= 2e-2 * abs(float(loss0))
    for n, g0 in grads0.items():
        g1 = grads1[n]
        # bf16 tolerance: relative L2 distance of each gradient.
        rel = float((g1.float() - g0.float()).norm() / (g0.float().norm() + 1e-12))
        assert rel < 5e-2, (n, rel)
