"""One forward call per mode for Nsight Compute (run on the GPU machine with the wheel installed):
    python3 scripts/gpu/pipes_probe.py fp8|bf16 [S] [D] [causal]
runs the call three times (ncu -s 2 -c 1 -k regex:fc_fwd_sm90 then profiles the third), so a perf
note can compare the pipes (tensor, XU/MUFU, FMA, ALU) and issue slots of the FP8 and bf16 kernels
on the same shape. B x S = 16K tokens, H x D = 2048, as the bench (PROBE_B, PROBE_H and
PROBE_DTYPE=fp16 override: the seed row is PROBE_B=16 PROBE_H=96 PROBE_DTYPE=fp16 ... bf16 512 64)."""
import os
import sys

import torch

import flashcore

mode = sys.argv[1]
s = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
d = int(sys.argv[3]) if len(sys.argv) > 3 else 128
causal = len(sys.argv) > 4 and sys.argv[4] == "causal"
b, h = int(os.environ.get("PROBE_B", 16384 // s)), int(os.environ.get("PROBE_H", 2048 // d))
dt = torch.float16 if os.environ.get("PROBE_DTYPE") == "fp16" else torch.bfloat16
q, k, v = (torch.randn(b, h, s, d, device="cuda", dtype=dt) for _ in range(3))
if mode == "fp8":
    (q, qd), (k, kd), (v, vd) = (flashcore.quantize_fp8(x) for x in (q, k, v))
    call = lambda: flashcore.attention(q, k, v, causal=causal, q_descale=qd, k_descale=kd, v_descale=vd)  # noqa: E731
else:
    call = lambda: flashcore.attention(q, k, v, causal=causal)  # noqa: E731
for _ in range(3):
    call()
torch.cuda.synchronize()
