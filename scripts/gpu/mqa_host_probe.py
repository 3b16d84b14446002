"""Is the Python bench's MQA backward row (B2 H16/1 S1K D128 bf16) host-bound? Times the same
backward (a) as the bench does (autograd.grad after a 256 MiB L2 flush, CUDA events, median),
(b) with a 1 GiB flush (more time for the host to run ahead), (c) the native entry point alone
(no autograd), and cuDNN's backward the same ways.  PYTHONPATH=/tmp/fcpy python3 mqa_host_probe.py"""

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import flashcore
from flashcore import _native, _ops
from flashcore._bench import time_ms

dev = torch.device("cuda")
torch.manual_seed(0)
q = torch.randn(2, 1024, 16, 128, device=dev, dtype=torch.bfloat16).transpose(1, 2)
k, v = (torch.randn(2, 1024, 1, 128, device=dev, dtype=torch.bfloat16).transpose(1, 2) for _ in range(2))
dout = torch.randn(2, 1024, 16, 128, device=dev, dtype=torch.bfloat16).transpose(1, 2)
leaves = [t.detach().requires_grad_() for t in (q, k, v)]
out_fc = flashcore.attention(*leaves)
with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
    out_cd = F.scaled_dot_product_attention(*leaves, enable_gqa=True)
o2, lse = torch.ops.flashcore.fwd(q, k, v, "none", 128**-0.5, keep_lse=True, lse_grad=False)
g = [torch.empty_like(t) for t in (q, k, v)]
stream = torch.cuda.current_stream().cuda_stream
bargs = [_ops._bshd(t) for t in (q, k, v, o2, dout)]
gargs = [_ops._bshd(t) for t in g]

rows = {
    "flashcore autograd.grad": lambda: torch.autograd.grad(out_fc, leaves, dout, retain_graph=True),
    "cuDNN autograd.grad": lambda: torch.autograd.grad(out_cd, leaves, dout, retain_graph=True),
    "flashcore _native.backward_cuda": lambda: _native.backward_cuda(
        0, stream, _ops.CUDA_DTYPES[q.dtype], *bargs, lse.data_ptr(), *gargs, "none", 128**-0.5, False, -1, -1, None, 0
    ),
}
for flush_mb in (256, 1024):
    flush = torch.empty(flush_mb << 20, dtype=torch.uint8, device=dev)
    for name, fn in rows.items():
        print(f"flush {flush_mb:5d} MiB  {name:34s} {time_ms(fn, flush, 30) * 1e3:8.1f} us")
    del flush
