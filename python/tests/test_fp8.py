"""FP8 forward: quantize_fp8 / hadamard_qk on CPU, argument errors, and (marker `gpu`) the kernel
against the float64 attention of its dequantized inputs within 2x a naive FP8 implementation's
error, plus patch_pytorch(fp8=True)."""

import math

import pytest
import torch

import flashcore
from flashcore import fp8
from conftest import MASKS, reference, visible

GPU = torch.cuda.is_available() and torch.cuda.get_device_capability() == (9, 0)


def outliers(*shape, device="cpu", seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(*shape, generator=g)
    pick = torch.rand(*shape, generator=g) < 1e-3
    return torch.where(pick, 10 * torch.randn(*shape, generator=g), x).to(device)


@pytest.mark.parametrize("granularity,shape", [("tensor", (1,)), ("head", (2, 3)), ("block", (2, 3, 3))])
@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_quantize_round_trip(granularity, shape, layout):
    x = outliers(2, 3, 300, 64)
    xl = x if layout == "bhsd" else x.transpose(1, 2).contiguous()
    x8, descale = flashcore.quantize_fp8(xl, granularity, layout=layout)
    assert x8.dtype == torch.float8_e4m3fn and x8.shape == xl.shape
    assert descale.dtype == torch.float32 and tuple(descale.shape) == shape
    back = fp8.dequantize_fp8(x8, descale, layout=layout)
    back = back if layout == "bhsd" else back.transpose(1, 2)
    # e4m3 keeps 3 mantissa bits: relative error <= 2^-4, plus the subnormal step near 0.
    tol = x.abs() / 16 + descale.max() * 2.0**-9
    assert torch.all((back - x).abs() <= tol)
    # Each group's largest magnitude lands on e4m3's largest finite value.
    assert x8.float().abs().max() == 448.0


def test_quantize_rejects_bad_arguments():
    with pytest.raises(ValueError, match="granularity"):
        flashcore.quantize_fp8(torch.randn(1, 2, 3, 16), "row")
    with pytest.raises(ValueError, match="`x`"):
        flashcore.quantize_fp8(torch.randn(2, 3, 16))
    with pytest.raises(TypeError, match="`x`"):
        flashcore.quantize_fp8(torch.randn(1, 2, 3, 16).to(torch.float8_e4m3fn))


def test_hadamard_keeps_scores_and_spreads_outliers():
    q, k = outliers(1, 2, 50, 64, seed=1), outliers(1, 2, 60, 64, seed=2)
    k[0, 0, 3, 7] = 100.0
    qh, kh = flashcore.hadamard_qk(q, k, seed=5)
    assert torch.allclose(qh @ kh.transpose(-1, -2), q @ k.transpose(-1, -2), atol=1e-3, rtol=1e-4)
    assert kh.abs().max() < 100.0 / 8 + 5


def test_attention_fp8_argument_errors():
    q8 = torch.zeros(1, 2, 16, 64).to(torch.float8_e4m3fn)
    with pytest.raises(ValueError, match="CUDA"):
        flashcore.attention(q8, q8, q8)
    with pytest.raises(ValueError, match="q_descale"):
        flashcore.attention(torch.randn(1, 2, 16, 64), torch.randn(1, 2, 16, 64), torch.randn(1, 2, 16, 64),
                            q_descale=torch.ones(1))
    with pytest.raises(TypeError, match="`k`"):
        fp8.attention_fp8(q8, torch.zeros(1, 2, 16, 64), q8)


def naive_fp8(q, k, v, mask, scale, p_log2=8):
    """A plain FP8 implementation over dequantized fp32 inputs: fp32 scores, P = exp(s - max) * 2^p
    rounded to e4m3, P·V in fp32, divided by the fp32 row sum, rounded to bf16."""
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    s = (q @ k.transpose(-1, -2)) * scale
    s = s.masked_fill(~visible(mask, q.shape[2], k.shape[2], q.device), float("-inf"))
    m = s.amax(-1, keepdim=True)
    p = torch.exp(s - torch.where(torch.isinf(m), torch.zeros_like(m), m)) * 2.0**p_log2
    l = p.sum(-1, keepdim=True)
    o = (p.to(torch.float8_e4m3fn).float() @ v) / torch.where(l > 0, l, torch.ones_like(l))
    return o.to(torch.bfloat16)


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="the FP8 forward needs an sm_90 GPU")
@pytest.mark.parametrize("shape", [(2, 4, 4, 300, 300, 64), (1, 4, 2, 77, 500, 128), (1, 2, 1, 257, 130, 256)],
                         ids=lambda s: "b{}h{}kv{}q{}k{}d{}".format(*s))
@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("gran", ["tensor", "head", "block"])
def test_fp8_values_within_bar(shape, mask, gran):
    b, h, hkv, sq, sk, d = shape
    q, k, v = (outliers(b, n, s, d, device="cuda", seed=i) for i, (n, s) in enumerate([(h, sq), (hkv, sk), (hkv, sk)]))
    # v's magnitude steps by 4x between 128-key blocks, so "block" descales of v differ per block
    # and the kernel's rescale of O between key blocks is exercised.
    v = v * torch.tensor([0.25, 1.0, 4.0], device="cuda")[(torch.arange(sk, device="cuda") // 128) % 3][:, None]
    (q8, qd), (k8, kd), (v8, vd) = (flashcore.quantize_fp8(x, gran) for x in (q, k, v))
    out, lse = flashcore.attention(q8, k8, v8, causal=MASKS[mask], return_lse=True, q_descale=qd, k_descale=kd,
                                   v_descale=vd)
    assert out.dtype == torch.bfloat16 and not out.isnan().any()
    qx, kx, vx = fp8.dequantize_fp8(q8, qd), fp8.dequantize_fp8(k8, kd), fp8.dequantize_fp8(v8, vd)
    want, want_lse = reference(qx.cpu(), kx.cpu(), vx.cpu(), mask)
    naive = naive_fp8(qx, kx, vx, mask, 1 / math.sqrt(d)).cpu().double()
    err = (out.cpu().double() - want).abs().max().item()
    bar = 2 * (naive - want).abs().max().item() + 1e-5
    assert err <= bar, (err, bar)
    fin = torch.isfinite(want_lse)
    assert torch.equal(torch.isinf(lse.cpu()), ~fin)
    assert (lse.cpu().double()[fin] - want_lse[fin]).abs().max() < 1e-2


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="the FP8 forward needs an sm_90 GPU")
def test_patch_pytorch_fp8_mode():
    import torch.nn.functional as F

    q, k, v = (outliers(2, 4, 256, 128, device="cuda", seed=i).to(torch.bfloat16) for i in range(3))
    want, _ = reference(q.cpu(), k.cpu(), v.cpu(), "causal")
    with flashcore.patched(fp8=True):
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    with flashcore.patched():
        out16 = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert out.dtype == torch.bfloat16
    e8 = ((out.cpu().double() - want) ** 2).mean().sqrt().item()
    e16 = ((out16.cpu().double() - want) ** 2).mean().sqrt().item()
    # The FP8 path ran (its error is FP8's, far above bf16's) and stays FP8-accurate.
    assert e16 < e8 < 0.05, (e16, e8)


@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_fp8_goes_through_its_custom_op_when_traced(layout):
    """Under a dispatch mode (here FakeTensorMode, as torch.compile traces) the FP8 path calls the
    custom op flashcore::fwd_fp8, whose fake implementation gives the output's shape, layout and
    dtype without a GPU; eager calls run the implementation directly."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        shape_q = (2, 4, 300, 64) if layout == "bhsd" else (2, 300, 4, 64)
        shape_k = (2, 2, 77, 64) if layout == "bhsd" else (2, 77, 2, 64)
        q = torch.empty(shape_q, device="cuda", dtype=torch.float8_e4m3fn)
        k = torch.empty(shape_k, device="cuda", dtype=torch.float8_e4m3fn)
        kd = torch.ones(2, 2, device="cuda")
        out, lse = flashcore.attention(q, k, k, causal=True, k_descale=kd, return_lse=True, layout=layout)
        assert out.shape == q.shape and out.dtype == torch.bfloat16 and out.device.type == "cuda"
        assert lse.shape == (2, 4, 300) and lse.dtype == torch.float32
        o16 = fp8.attention_fp8(q, k, k, layout=layout, out_dtype=torch.float16)
        assert o16.shape == q.shape and o16.dtype == torch.float16


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="the FP8 forward needs an sm_90 GPU")
def test_fp8_torch_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    q, k, v = (outliers(1, 4, 256, 128, device="cuda", seed=i) for i in range(3))
    (q8, qd), (k8, kd), (v8, vd) = (flashcore.quantize_fp8(t, "head") for t in (q, k, v))
    fn = lambda q, k, v: flashcore.attention(q, k, v, causal=True, q_descale=qd, k_descale=kd, v_descale=vd)  # noqa: E731
    got = torch.compile(fn, fullgraph=True)(q8, k8, v8)
    assert torch.equal(got, fn(q8, k8, v8))
