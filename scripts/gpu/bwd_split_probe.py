"""Where a backward call's device time goes, per kernel, flashcore beside SDPA's cuDNN backend
(torch.profiler, flushed calls, one process). The backward is three launches in flashcore (the
rowsum(dO∘O) preprocess, the main kernel, the dQ postprocess); this says what the two small ones
cost on the short rows, where the ratio to cuDNN is lowest.
    PYTHONPATH=/tmp/fcpy python3 scripts/gpu/bwd_split_probe.py [bwd row names...]
"""

import torch
from torch.nn.attention import sdpa_kernel
from kernel_times import kernel_us, probe_setup

from flashcore import _bench

DEFAULT_ROWS = ["bwd-d128-s1k", "bwd-d128-s1k-causal", "bwd-d64-s1k", "bwd-d64-s1k-causal", "bwd-d128-s4k", "bwd-d64-s16k"]
dev, picked, peers, flush = probe_setup(DEFAULT_ROWS, "bwd", "bwd")
for r in picked:
    name = r["name"]
    q, k, v = _bench.make_inputs(r, dev)
    dout = torch.randn_like(q)
    fl = _bench.flops(r)
    print(f"=== {name} ({fl / 1e9:.1f} GFLOP)")
    for backend in ("flashcore", "sdpa_cudnn"):
        leaves = [t.detach().requires_grad_() for t in (q, k, v)]
        call = _bench._flashcore_call(r, *leaves) if backend == "flashcore" else _bench._sdpa_call(r, *leaves)
        if backend == "flashcore":
            out = call()
        else:
            with sdpa_kernel([peers["sdpa_cudnn"]]):
                out = call()

        def grad(out=out, leaves=leaves):
            return torch.autograd.grad(out, leaves, dout, retain_graph=True)

        ks = kernel_us(grad, flush, width=70)
        total = sum(us for us, _ in ks.values())
        for kname, (us, cnt) in sorted(ks.items(), key=lambda kv: -kv[1][0]):
            print(f"  {backend:10s} {us:9.1f} us x{cnt:.0f} {100 * us / total:5.1f}%  {kname}")
        print(f"  {backend:10s} {total:9.1f} us total  ({fl / total / 1e6:.1f} TF/s kernels alone)")
        del out, leaves
    del q, k, v
    torch.cuda.empty_cache()
