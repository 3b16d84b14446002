"""One small FP8 forward per head dim, checked against the dequantized fp32 attention (run on the
GPU machine with the wheel installed; a hang shows as the process's timeout)."""
import sys

import torch

import flashcore
from flashcore import fp8

for d in [int(x) for x in (sys.argv[1:] or ["64", "128", "256"])]:
    q, k, v = (torch.randn(1, 2, 300, d, device="cuda") for _ in range(3))
    (q8, qd), (k8, kd), (v8, vd) = (flashcore.quantize_fp8(x) for x in (q, k, v))
    out = flashcore.attention(q8, k8, v8, q_descale=qd, k_descale=kd, v_descale=vd)
    torch.cuda.synchronize()
    qx, kx, vx = (fp8.dequantize_fp8(a, b) for a, b in ((q8, qd), (k8, kd), (v8, vd)))
    want = torch.softmax(qx @ kx.transpose(-1, -2) / d**0.5, -1) @ vx
    print(f"d{d}: max err {(out.float() - want).abs().max().item():.3e}", flush=True)
