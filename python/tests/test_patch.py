"""patch_pytorch / unpatch_pytorch / patched: identity, idempotence, served calls and every fallback."""

import logging

import pytest
import torch
import torch.nn.functional as F

import flashcore
from flashcore import patch
from conftest import max_err, qkv, rand, reference

ORIGINAL = F.scaled_dot_product_attention


@pytest.fixture(autouse=True)
def clean():
    flashcore.unpatch_pytorch()
    flashcore.reset_fallback_counts()
    yield
    flashcore.unpatch_pytorch()
    assert F.scaled_dot_product_attention is ORIGINAL


def test_patch_unpatch_restore_the_exact_object():
    flashcore.patch_pytorch()
    assert F.scaled_dot_product_attention is patch.scaled_dot_product_attention
    assert torch.nn.functional.scaled_dot_product_attention is patch.scaled_dot_product_attention
    flashcore.patch_pytorch()  # idempotent: the saved original is not replaced by the wrapper
    flashcore.unpatch_pytorch()
    assert F.scaled_dot_product_attention is ORIGINAL
    flashcore.unpatch_pytorch()  # idempotent
    assert F.scaled_dot_product_attention is ORIGINAL


def test_context_manager_and_nesting():
    with flashcore.patched():
        assert patch.is_patched()
        with flashcore.patched():
            assert patch.is_patched()
        assert patch.is_patched()  # the inner block leaves the outer patch in place
    assert F.scaled_dot_product_attention is ORIGINAL
    with pytest.raises(RuntimeError):
        with flashcore.patched():
            raise RuntimeError("boom")
    assert F.scaled_dot_product_attention is ORIGINAL


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("gqa", [False, True])
def test_served_calls_match_sdpa(is_causal, gqa):
    q, k, v = qkv(2, 4, 2 if gqa else 4, 13, 21, 32, requires_grad=True)
    with flashcore.patched():
        out = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal, scale=0.3, enable_gqa=gqa)
    assert flashcore.fallback_counts() == {}
    want = ORIGINAL(q, k, v, is_causal=is_causal, scale=0.3, enable_gqa=gqa)
    assert max_err(out, want) < 1e-12
    dout = rand(*out.shape)
    got = torch.autograd.grad(out, (q, k, v), dout)
    exp = torch.autograd.grad(want, (q, k, v), dout)
    for g, e in zip(got, exp):
        assert max_err(g, e) < 1e-10


def test_causal_bias_objects_are_served():
    from torch.nn.attention.bias import causal_lower_right, causal_upper_left

    q, k, v = qkv(1, 2, 2, 6, 10, 16)
    with flashcore.patched():
        br = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(6, 10))
        tl = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_upper_left(6, 10))
    assert flashcore.fallback_counts() == {}
    assert max_err(br, reference(q, k, v, "causal_br")[0]) < 1e-12
    assert max_err(tl, reference(q, k, v, "causal")[0]) < 1e-12


def _fallback_cases():
    q, k, v = qkv(2, 4, 4, 8, 8, 32)
    kg, vg = k[:, :2], v[:, :2]
    nt = torch.nested.nested_tensor([rand(4, 8, 32), rand(4, 5, 32)])
    bad_stride = q.transpose(-1, -2).contiguous().transpose(-1, -2)
    return {
        "attn_mask": (q, k, v, dict(attn_mask=torch.ones(8, 8, dtype=torch.bool).tril())),
        "attn_mask_float": (q, k, v, dict(attn_mask=rand(8, 8))),
        "not_tensor": (nt, nt, nt, {}),
        "dropout": (q, k, v, dict(dropout_p=0.5)),
        "rank": (q[0], k[0], v[0], {}),
        "device": (q, k.to("meta"), v.to("meta"), {}),
        "dtype": (q, k.float(), v.float(), {}),
        "head_dim": (q[..., :24], k[..., :24], v[..., :24], {}),
        "head_dim_v": (q, k, v[..., :16], {}),
        "shape": (q, k[:1], v[:1], {}),
        "gqa": (q, kg, vg, {}),
        "stride": (bad_stride, k, v, {}),
        "scale": (q, k, v, dict(scale=-0.5)),
    }


@pytest.mark.parametrize("case", list(_fallback_cases()))
def test_every_fallback_reason(case, caplog):
    q, k, v, kw = _fallback_cases()[case]
    reason = {"head_dim_v": "head_dim", "attn_mask_float": "attn_mask"}.get(case, case)
    assert reason in patch.REASONS
    assert patch.fallback_reason(q, k, v, **kw)[0] == reason
    flashcore.patch_pytorch(debug=True)
    caplog.set_level(logging.DEBUG, logger="flashcore.patch")
    try:
        want = ORIGINAL(q, k, v, **kw)
    except Exception as e:  # PyTorch itself rejects it: the wrapper must raise the same error
        with pytest.raises(type(e)):
            F.scaled_dot_product_attention(q, k, v, **kw)
    else:
        torch.manual_seed(0)
        got = F.scaled_dot_product_attention(q, k, v, **kw)
        if kw.get("dropout_p"):
            torch.manual_seed(0)
            want = ORIGINAL(q, k, v, **kw)
        if q.is_nested:
            assert all(torch.equal(a, b) for a, b in zip(got.unbind(), want.unbind()))
        else:
            assert torch.equal(got, want)  # the very same function ran
    assert flashcore.fallback_counts() == {reason: 1}
    assert any(reason in r.getMessage() for r in caplog.records if r.name == "flashcore.patch")


def test_every_reason_has_a_case():
    # "alignment" needs a CUDA tensor: tests/test_gpu.py covers it.
    cases = {{"head_dim_v": "head_dim", "attn_mask_float": "attn_mask"}.get(c, c) for c in _fallback_cases()}
    assert cases | {"alignment"} == set(patch.REASONS)


def test_multihead_attention_goes_through_flashcore():
    mha = torch.nn.MultiheadAttention(64, 4, batch_first=True, dtype=torch.float64)
    x = rand(2, 11, 64)
    want, _ = mha(x, x, x, need_weights=False)
    calls = []
    orig_attention = patch.attention

    def spy(*a, **kw):
        calls.append(kw.get("causal"))
        return orig_attention(*a, **kw)

    patch.attention = spy
    try:
        with flashcore.patched():
            got, _ = mha(x, x, x, need_weights=False)
    finally:
        patch.attention = orig_attention
    assert calls == [False]
    assert max_err(got, want) < 1e-12


def test_compile_through_patched_sdpa():
    torch._dynamo.reset()
    q, k, v = qkv(1, 4, 4, 8, 8, 32)
    with flashcore.patched():
        fn = torch.compile(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                           fullgraph=True, backend="aot_eager")
        got = fn(q, k, v)
    assert max_err(got, reference(q, k, v, "causal")[0]) < 1e-12
