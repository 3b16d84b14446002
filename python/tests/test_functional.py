"""flashcore.attention on CPU tensors: values vs float64 SDPA over shapes, masks, GQA, scales,
layouts and dtypes; gradients (gradcheck); input validation."""

import math

import pytest
import torch

import flashcore
from flashcore import _ops
from conftest import MASKS, assert_within_bar, max_err, qkv, rand, reference

# (B, H, Hkv, Sq, Sk, D)
SHAPES = [
    (1, 1, 1, 1, 1, 16),
    (2, 4, 4, 33, 33, 64),
    (2, 4, 2, 17, 40, 32),
    (1, 8, 1, 40, 17, 128),
    (2, 2, 2, 5, 64, 256),
    (3, 6, 3, 9, 9, 48),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "b{}h{}kv{}q{}k{}d{}".format(*s))
@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_values_f64(shape, mask, layout):
    b, h, hkv, sq, sk, d = shape
    q, k, v = qkv(b, h, hkv, sq, sk, d)
    scale = None if sq % 2 else 0.37
    want, want_lse = reference(q, k, v, mask, scale)
    if layout == "bshd":
        out, lse = flashcore.attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
            causal=MASKS[mask], scale=scale, return_lse=True, layout="bshd",
        )
        out = out.transpose(1, 2)
    else:
        out, lse = flashcore.attention(q, k, v, causal=MASKS[mask], scale=scale, return_lse=True)
    assert out.shape == q.shape and out.dtype == q.dtype
    assert max_err(out, want) < 1e-12
    assert lse.shape == (b, h, sq) and lse.dtype == torch.float64
    assert torch.equal(torch.isinf(lse), torch.isinf(want_lse))
    fin = torch.isfinite(want_lse)
    assert max_err(lse[fin], want_lse[fin]) < 1e-12


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mask", list(MASKS))
def test_values_low_precision(dtype, mask):
    q, k, v = qkv(2, 4, 2, 29, 45, 64, dtype=dtype)
    out = flashcore.attention(q, k, v, causal=MASKS[mask])
    assert out.dtype == dtype
    assert_within_bar(out, q, k, v, mask)


def test_fully_masked_rows_are_zero_with_lse_minus_inf():
    q, k, v = qkv(1, 2, 2, 10, 4, 32)
    out, lse = flashcore.attention(q, k, v, causal="bottom_right", return_lse=True)
    # Bottom-right alignment: query i sees keys j <= i - 6, so rows 0..5 see nothing.
    assert torch.all(out[:, :, :6] == 0)
    assert torch.all(torch.isneginf(lse[:, :, :6]))
    assert torch.all(torch.isfinite(lse[:, :, 6:]))


def test_strided_views_are_read_in_place():
    # q, k, v as slices of one packed [B, S, 3, H, D] projection: non-contiguous, head dim contiguous.
    b, s, h, d = 2, 21, 4, 64
    packed = rand(b, s, 3, h, d)
    q, k, v = packed.unbind(2)
    assert not q.is_contiguous()
    out = flashcore.attention(q, k, v, causal=True, layout="bshd")
    want, _ = reference(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), "causal")
    assert max_err(out.transpose(1, 2), want) < 1e-12
    # A batch-broadcast k/v (stride 0) is read as it is too.
    k1, v1 = rand(1, 2, 30, d).expand(b, 2, 30, d), rand(1, 2, 30, d).expand(b, 2, 30, d)
    qq = rand(b, 4, 7, d)
    want, _ = reference(qq, k1, v1)
    assert max_err(flashcore.attention(qq, k1, v1), want) < 1e-12


def test_output_takes_q_layout():
    q, k, v = qkv(2, 4, 4, 16, 16, 32)
    out = flashcore.attention(q, k, v)
    assert out.is_contiguous()
    out = flashcore.attention(q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous(),
                              v.transpose(1, 2).contiguous(), layout="bshd")
    assert out.is_contiguous()  # [B, S, H, D] memory for a BSHD q


@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("shape", [(1, 2, 1, 5, 7, 16), (2, 2, 2, 7, 5, 16)])
def test_gradcheck(mask, shape):
    b, h, hkv, sq, sk, d = shape
    q, k, v = qkv(b, h, hkv, sq, sk, d, requires_grad=True)
    fn = lambda q, k, v: flashcore.attention(q, k, v, causal=MASKS[mask], scale=0.5)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v))


@pytest.mark.parametrize("deterministic", [False, True])
def test_gradcheck_deterministic_flag(deterministic):
    # On CPU the flag only travels to the backward; the gradients are those of the f64 path.
    q, k, v = qkv(1, 2, 1, 5, 7, 16, requires_grad=True)
    fn = lambda q, k, v: flashcore.attention(q, k, v, causal="bottom_right", deterministic=deterministic)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v))


def test_gradcheck_through_lse():
    q, k, v = qkv(1, 4, 2, 6, 9, 16, requires_grad=True)
    fn = lambda q, k, v: flashcore.attention(q, k, v, causal=True, return_lse=True)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v))


@pytest.mark.parametrize("mask", list(MASKS))
def test_chunked_backward_matches_sdpa_autograd(mask, monkeypatch):
    # Force many chunks (a few rows each) and compare with autograd through float64 SDPA math.
    monkeypatch.setattr(_ops, "BWD_CHUNK_ELEMENTS", 3 * 4 * 50)
    q, k, v = qkv(2, 4, 2, 37, 50, 32, requires_grad=True)
    dout = rand(2, 4, 37, 32)
    flashcore.attention(q, k, v, causal=MASKS[mask]).backward(dout)
    got = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    want, _ = reference(q, k, v, mask)
    want.backward(dout)
    for name, g, w in zip("qkv", got, (q.grad, k.grad, v.grad)):
        assert max_err(g, w) < 1e-10, name


def test_low_precision_backward_is_close_to_f64():
    q, k, v = qkv(1, 4, 4, 24, 24, 64, dtype=torch.bfloat16, requires_grad=True)
    dout = rand(1, 4, 24, 64, dtype=torch.bfloat16)
    flashcore.attention(q, k, v, causal=True).backward(dout)
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    reference(q64, k64, v64, "causal")[0].backward(dout.double())
    for g, w in zip((q.grad, k.grad, v.grad), (q64.grad, k64.grad, v64.grad)):
        assert g.dtype == torch.bfloat16
        # fp32 math on bf16 inputs, rounded once to bf16: within a few bf16 ulps of the exact gradient.
        assert max_err(g, w) <= 4 * 2**-8 * float(w.abs().max()) + 1e-5


def _bad(exc, arg, fn):
    with pytest.raises(exc) as e:
        fn()
    assert f"`{arg}`" in str(e.value) and e.value.arg == arg
    return e


def test_bad_inputs_name_the_argument():
    q, k, v = qkv(2, 4, 2, 8, 8, 32)
    att = flashcore.attention
    _bad(TypeError, "k", lambda: att(q, k.float(), v))
    _bad(TypeError, "v", lambda: att(q, k, v.float()))
    _bad(TypeError, "q", lambda: att(q.int(), k.int(), v.int()))
    _bad(TypeError, "q", lambda: att(q.numpy(), k, v))
    _bad(ValueError, "q", lambda: att(q[0], k, v))
    _bad(ValueError, "k", lambda: att(q, k[:, :, :, :16], v[:, :, :, :16]))
    _bad(ValueError, "v", lambda: att(q, k, v[:, :, :4]))
    _bad(ValueError, "k", lambda: att(q, k[:1], v[:1]))
    _bad(ValueError, "k", lambda: att(q[:, :3], k, v))  # 3 query heads over 2 kv heads
    _bad(ValueError, "q", lambda: att(q.transpose(-1, -2).contiguous().transpose(-1, -2)[..., :32], k, v))
    _bad(ValueError, "k", lambda: att(q, k.transpose(-1, -2).contiguous().transpose(-1, -2), v))
    _bad(flashcore.UnsupportedError, "q", lambda: att(*qkv(1, 1, 1, 4, 4, 24)))
    _bad(ValueError, "layout", lambda: att(q, k, v, layout="sbhd"))
    _bad(ValueError, "causal", lambda: att(q, k, v, causal="diagonal"))
    _bad(ValueError, "scale", lambda: att(q, k, v, scale=-1.0))
    _bad(ValueError, "scale", lambda: att(q, k, v, scale=math.inf))
    _bad(TypeError, "scale", lambda: att(q, k, v, scale="0.1"))
    _bad(TypeError, "deterministic", lambda: att(q, k, v, deterministic=1))
    _bad(TypeError, "return_lse", lambda: att(q, k, v, return_lse="yes"))
    _bad(ValueError, "k", lambda: att(q, k[:, :, :0], v[:, :, :0]))  # no keys: from the Rust checks
    if torch.backends.mps.is_available() or torch.cuda.is_available():
        return
    _bad(ValueError, "k", lambda: att(q, k.to("meta"), v))


def test_unsupported_error_is_a_value_error():
    assert issubclass(flashcore.UnsupportedError, ValueError)


def test_head_dim_rule_matches_native():
    from flashcore import _native
    from flashcore.functional import supported_head_dim

    assert [supported_head_dim(d) for d in range(300)] == [_native.supported_head_dim(d) for d in range(300)]


def test_empty_batch_returns_empty():
    q, k, v = qkv(0, 2, 2, 5, 5, 16)
    out, lse = flashcore.attention(q, k, v, return_lse=True)
    assert out.shape == q.shape and lse.shape == (0, 2, 5)


def test_info_reports_versions():
    i = flashcore.info()
    assert i["version"] == flashcore.__version__
    assert i["torch"] == torch.__version__
    assert isinstance(i["devices"], list)
