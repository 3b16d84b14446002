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
