"""Session 16: how often the forward value test's bar fails by chance. python/tests/test_gpu.py
test_values_vs_float64 compares flashcore's max error against 2 x that of torch SDPA run in the
16-bit dtype (conftest.reference), a fused fp32-accumulating kernel, not the naive same-dtype
implementation the standard names (conftest.attention_math: scores in the dtype, softmax in fp32,
P rounded to the dtype). For N fresh draws per shape, prints the distribution of flashcore's error
over each of the two, and how many draws exceed 2x (+1e-5).
    PYTHONPATH=/tmp/fcpy python3 scripts/gpu/s16_bar_probe.py [N]
"""

import sys

import torch

sys.path.insert(0, "python/tests")
from conftest import attention_math, max_err, qkv, reference  # noqa: E402

import flashcore  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
SHAPES = [(1, 4, 4, 77, 77, 256), (2, 8, 8, 512, 512, 64), (1, 8, 2, 300, 1000, 128), (3, 2, 2, 1, 513, 16)]
for dtype in (torch.float16, torch.bfloat16):
    for shape in SHAPES:
        b, h, hkv, sq, sk, d = shape
        r_sdpa, r_naive = [], []
        for _ in range(N):
            q, k, v = qkv(b, h, hkv, sq, sk, d, dtype=dtype, device="cuda")
            out = flashcore.attention(q, k, v)
            want, _ = reference(q, k, v)
            e = max_err(out, want)
            r_sdpa.append(e / (max_err(reference(q, k, v, dtype=dtype)[0], want) + 5e-6))
            r_naive.append(e / (max_err(attention_math(q, k, v, dtype=dtype)[0], want) + 5e-6))
        for name, r in (("sdpa16", r_sdpa), ("naive", r_naive)):
            t = torch.tensor(r)
            print(f"{str(dtype)[6:]:9s} {shape} vs {name:6s}: median {t.median():.2f} p99 {t.quantile(0.99):.2f} "
                  f"max {t.max():.2f}; over 2x: {int((t > 2).sum())}/{N}")
