"""register_transformers(): a tiny random-weight Llama (GQA, causal) with the attn_implementation
it returns ("flashcore", or "fcore" on transformers 5) matches the same weights under "sdpa"; padded batches fall back cleanly."""

import pytest
import torch

import flashcore
from conftest import max_err

transformers = pytest.importorskip("transformers")


def tiny_llama(impl, device="cpu", dtype=torch.float64):
    cfg = transformers.LlamaConfig(
        vocab_size=97, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=8,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
    )
    return transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation=impl, dtype=dtype).to(device)


def run_pair(device, dtype):
    name = flashcore.register_transformers()
    assert name in ("flashcore", "fcore")
    ref = tiny_llama("sdpa", device, dtype)
    fc = tiny_llama(name, device, dtype)
    fc.load_state_dict(ref.state_dict())
    ids = torch.randint(0, 97, (2, 21), device=device)
    return ref, fc, ids


def test_flashcore_llama_matches_sdpa_cpu():
    ref, fc, ids = run_pair("cpu", torch.float64)
    flashcore.reset_fallback_counts()
    calls = []
    orig = flashcore.transformers.attention
    flashcore.transformers.attention = lambda *a, **kw: calls.append(kw) or orig(*a, **kw)
    try:
        got = fc(ids).logits
    finally:
        flashcore.transformers.attention = orig
    assert flashcore.fallback_counts() == {}
    assert len(calls) == 2 and all(kw["causal"] for kw in calls)  # one causal call per layer
    assert max_err(got, ref(ids).logits) < 1e-10


def test_padding_mask_falls_back_cpu():
    ref, fc, ids = run_pair("cpu", torch.float64)
    mask = torch.ones_like(ids)
    mask[0, :5] = 0  # left padding
    flashcore.reset_fallback_counts()
    got = fc(ids, attention_mask=mask).logits
    assert flashcore.fallback_counts().get("attn_mask", 0) >= 1
    want = ref(ids, attention_mask=mask).logits
    assert max_err(got[mask.bool()], want[mask.bool()]) < 1e-10


@pytest.mark.gpu
def test_flashcore_llama_matches_sdpa_gpu():
    ref, fc, ids = run_pair("cuda", torch.bfloat16)
    flashcore.reset_fallback_counts()
    got = fc(ids).logits.float()
    assert flashcore.fallback_counts() == {}
    want = ref(ids).logits.float()
    ref64 = tiny_llama("sdpa", "cpu", torch.float64)
    ref64.load_state_dict({k: v.double().cpu() for k, v in ref.state_dict().items()})
    exact = ref64(ids.cpu()).logits.cuda()
    # Same rule as the kernels: within 2x the error of SDPA's own bf16 run, plus a small atol.
    assert max_err(got, exact) <= 2 * max_err(want, exact) + 1e-2


def tiny_gpt_oss(impl, dtype=torch.float32):
    if not hasattr(transformers, "GptOssConfig"):
        pytest.skip("this transformers has no gpt-oss")
    cfg = transformers.GptOssConfig(
        vocab_size=97, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, num_local_experts=4, num_experts_per_tok=2, sliding_window=8,
        max_position_embeddings=64, layer_types=["sliding_attention", "full_attention"],
    )
    return transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation=impl, dtype=dtype)


def test_gpt_oss_sinks_match_eager_cpu():
    """gpt-oss passes its attention sinks as `s_aux`: flashcore's `sinks=` where no mask is needed
    (full-attention layer on an unpadded batch), the eager fallback where one is (the sliding
    window shorter than the sequence, padding); logits equal transformers' eager implementation
    to float32 rounding (its mixture-of-experts layers have no float64 kernel)."""
    name = flashcore.register_transformers()
    torch.manual_seed(0)
    ref = tiny_gpt_oss("eager")
    with torch.no_grad():
        for layer in ref.model.layers:
            layer.self_attn.sinks.normal_(0.0, 2.0)  # large enough to matter
    fc = tiny_gpt_oss(name)
    fc.load_state_dict(ref.state_dict())
    ids = torch.randint(0, 97, (2, 21))
    calls = []
    orig = flashcore.transformers.attention
    flashcore.transformers.attention = lambda *a, **kw: calls.append(kw) or orig(*a, **kw)
    try:
        flashcore.reset_fallback_counts()
        got = fc(ids).logits
    finally:
        flashcore.transformers.attention = orig
    assert any(kw.get("sinks") is not None for kw in calls)  # the full-attention layer ran in flashcore
    assert max_err(got, ref(ids).logits) < 1e-4
    mask = torch.ones_like(ids)
    mask[0, :4] = 0
    got = fc(ids, attention_mask=mask).logits
    want = ref(ids, attention_mask=mask).logits
    assert max_err(got[mask.bool()], want[mask.bool()]) < 1e-4
    # Without the sinks the logits differ by far more: the test sees them.
    with torch.no_grad():
        for layer in fc.model.layers:
            layer.self_attn.sinks.fill_(-float("inf"))
    assert max_err(fc(ids).logits, ref(ids).logits) > 1e-2
