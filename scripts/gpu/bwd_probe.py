"""One backward call for Nsight Compute (run on the GPU machine with the wheel installed):
    python3 scripts/gpu/bwd_probe.py [S] [D] [causal]
runs forward + backward three times (ncu -k regex:fc_bwd_sm90 -s 2 -c 1 profiles the third main
kernel). B x S = 16K tokens, H x D = 2048, bf16, as the bench."""
import sys

import torch

import flashcore

s = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
d = int(sys.argv[2]) if len(sys.argv) > 2 else 128
causal = len(sys.argv) > 3 and sys.argv[3] == "causal"
b, h = 16384 // s, 2048 // d
q, k, v = (torch.randn(b, h, s, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
dout = torch.randn(b, h, s, d, device="cuda", dtype=torch.bfloat16)
for _ in range(3):
    out = flashcore.attention(q, k, v, causal=causal)
    out.backward(dout)
torch.cuda.synchronize()
