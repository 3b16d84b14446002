"""Where the Python bench's extra ~1.2% on the short backward rows goes (bench/NOTES.md session 29
item 1: `python -m flashcore bench --suite bwd` times D128 S1K at ~0.699 ms, the CLI's A B A B at
~0.691). One process, one row (ROW, default bwd-d128-s1k), the bench's inputs and 1 GiB flush:

  rounds      the bench's own timing: flashcore and cuDNN autograd backwards in rounds
  alone       flashcore's autograd backward timed alone (no cuDNN runs in between)
  impl        flashcore._ops.bwd_impl called directly (no autograd), alone
  side        `alone` on a side stream instead of torch's default (legacy) stream
  cudnn       cuDNN's autograd backward alone

then torch.profiler over a few `alone` runs: each GPU op between flush and the end event, its
duration and the gap before it, so a gap or an op the CLI does not queue shows.

    python3 scripts/gpu/s30_pygap.py OUT.json [ITERS]
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from flashcore import _bench, _ops

ROW = os.environ.get("ROW", "bwd-d128-s1k")
ITERS = int(sys.argv[2]) if len(sys.argv) > 2 else 40


def main() -> None:
    dev = torch.device("cuda")
    r = next(x for x in _bench.load_shapes(["bwd"]) if x["name"] == ROW)
    flops = _bench.flops(r)
    flush = torch.empty(_bench.FLUSH_BYTES, dtype=torch.uint8, device=dev)
    q, k, v = _bench.make_inputs(r, dev)
    dout = torch.randn(r["b"], r["sq"], r["h"], r["d"], device=dev, dtype=q.dtype).transpose(1, 2)
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    out = _bench._flashcore_call(r, *leaves)()
    fc = lambda: torch.autograd.grad(out, leaves, dout, retain_graph=True)  # noqa: E731
    cleaves = [t.detach().requires_grad_() for t in (q, k, v)]
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        cout = F.scaled_dot_product_attention(*cleaves)
    cu = lambda: torch.autograd.grad(cout, cleaves, dout, retain_graph=True)  # noqa: E731
    scale = 1.0 / math.sqrt(r["d"])
    o2, lse2 = torch.ops.flashcore.fwd(q, k, v, "none", scale)
    impl = lambda: _ops.bwd_impl(dout, q, k, v, o2, lse2, None, "none", scale)  # noqa: E731
    cudnn_ctx = {"cudnn": lambda: sdpa_kernel(SDPBackend.CUDNN_ATTENTION)}
    _bench._spin_up(dev)
    results = []

    def rec(label, ms):
        print(f"{label:<10} {ms:8.4f} ms {flops / ms / 1e9:7.1f} TF/s", flush=True)
        backend = "sdpa_cudnn" if label in ("cudnn", "rounds-cu") else "flashcore"
        # Timing only: no errors checked here (the bench and the CLI check these rows).
        results.append(_bench._record(r, torch.cuda.get_device_name(), backend, ms, None, None, None, None, config=label))

    for p in (1, 2):
        t = _bench.time_rounds({"flashcore": fc, "cudnn": cu}, flush, ITERS, cudnn_ctx)
        rec("rounds", t["flashcore"])
        rec("rounds-cu", t["cudnn"])
        rec("alone", _bench.time_ms(fc, flush, ITERS))
        rec("impl", _bench.time_ms(impl, flush, ITERS))
        s = torch.cuda.Stream()
        with torch.cuda.stream(s):
            rec("side", _bench.time_ms(fc, flush, ITERS))
        torch.cuda.synchronize()
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            rec("cudnn", _bench.time_ms(cu, flush, ITERS))

    with open(sys.argv[1], "w") as f:
        json.dump(results, f, indent=1)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        for _ in range(4):
            flush.zero_()
            fc()
        torch.cuda.synchronize()
    evs = [e for e in prof.events() if e.device_type.name == "CUDA"]
    evs.sort(key=lambda e: e.time_range.start)
    prev_end = None
    for e in evs:
        st, en = e.time_range.start, e.time_range.end
        gap = (st - prev_end) if prev_end is not None else 0.0
        print(f"  gap {gap:8.1f} us  dur {en - st:8.1f} us  {e.name[:90]}")
        prev_end = en


if __name__ == "__main__":
    main()
