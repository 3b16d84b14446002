"""Host time per attention call on the GPU machine (small shapes, where it, not the kernel, sets the
speed): flashcore.attention, its custom op, the native entry point alone, and torch SDPA for scale.
Each figure is the mean over N back-to-back calls without a sync (so it is the host's cost as long
as the GPU keeps up), after a warm-up.  PYTHONPATH=/tmp/fcpy python3 scripts/gpu/host_overhead.py"""

import time

import torch
import torch.nn.functional as F

import flashcore
from flashcore import _native, _ops

N = 2000
dev = torch.device("cuda")
q, k, v = (torch.randn(1, 2, 128, 64, device=dev, dtype=torch.bfloat16) for _ in range(3))


def per_call(fn):
    for _ in range(100):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(N):
        fn()
    host = (time.perf_counter() - t) / N * 1e6
    torch.cuda.synchronize()
    return host


out = torch.empty_like(q)
stream = torch.cuda.current_stream().cuda_stream
args = (_ops._bshd(q), _ops._bshd(k), _ops._bshd(v), _ops._bshd(out))
rows = [
    ("torch SDPA (default backend)", lambda: F.scaled_dot_product_attention(q, k, v)),
    ("flashcore.attention", lambda: flashcore.attention(q, k, v)),
    ("torch.ops.flashcore.fwd", lambda: torch.ops.flashcore.fwd(q, k, v, "none", 0.125, keep_lse=False, lse_grad=False)),
    ("_native.forward_cuda", lambda: _native.forward_cuda(0, stream, _ops.CUDA_DTYPES[q.dtype], *args, 0, "none", 0.125)),
    ("torch.empty_like x2 + current_stream", lambda: (torch.empty_like(q), torch.empty(0, device=dev),
                                                      torch.cuda.current_stream(dev).cuda_stream)),
]
for name, fn in rows:
    print(f"{name:40s} {per_call(fn):8.1f} us per call (host)")

# Backward (the bench's bwd rows time torch.autograd.grad of a kept graph): the whole autograd call
# for flashcore and for SDPA's cuDNN backend, flashcore's backward without autograd, and the native
# entry point alone. Shape of the bench's MQA row scaled down, so the GPU keeps up.
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402

qb = torch.randn(1, 4, 128, 128, device=dev, dtype=torch.bfloat16, requires_grad=True)
kb, vb = (torch.randn(1, 1, 128, 128, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(2))
do = torch.randn_like(qb)
out_fc = flashcore.attention(qb, kb, vb)
with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
    out_sd = F.scaled_dot_product_attention(qb, kb, vb, enable_gqa=True)
o2, lse2 = torch.ops.flashcore.fwd(qb.detach(), kb.detach(), vb.detach(), "none", 128**-0.5, keep_lse=True,
                                   lse_grad=False)[:2]
g = [torch.empty_like(t) for t in (qb, kb, vb)]
bargs = [_ops._bshd(t) for t in (qb, kb, vb, o2, do)]
gargs = [_ops._bshd(t) for t in g]
brows = [
    ("autograd.grad, SDPA cuDNN", lambda: torch.autograd.grad(out_sd, (qb, kb, vb), do, retain_graph=True)),
    ("autograd.grad, flashcore", lambda: torch.autograd.grad(out_fc, (qb, kb, vb), do, retain_graph=True)),
    ("_ops._native_backward", lambda: _ops._native_backward(do, qb.detach(), kb.detach(), vb.detach(), o2, lse2,
                                                            *g, "none", 128**-0.5, False)),
    ("_native.backward_cuda", lambda: _native.backward_cuda(0, stream, _ops.CUDA_DTYPES[qb.dtype], *bargs, lse2.data_ptr(),
                                                            *gargs, "none", 128**-0.5, False, -1, -1, None, 0)),
]
for name, fn in brows:
    print(f"{name:40s} {per_call(fn):8.1f} us per call (host)")
