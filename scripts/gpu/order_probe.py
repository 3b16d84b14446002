"""Does the order in which the bench times the backends move their numbers? (GPU machine, after
build_wheel.sh; run with the torch venv's python.)

The same-process bench (`python -m flashcore bench`) times flashcore first in each row, then the
SDPA backends, each as a block of warm-up + timed calls. Session 11 saw flashcore's D128 S16K row
at 642-649 TF/s there, against 704-719 for the same kernel in the CLI's A B A B of the same device
call, while cuDNN's number stayed where it was. This times flashcore and cuDNN on the given rows in
three orders: flashcore's block first, cuDNN's block first, and interleaved (one call of each in
turn, each after the L2 flush, medians over the calls). It prints a wall-clock stamp at each phase,
so a clock log taken beside it (nvidia-smi -lms) can be lined up.

    python3 scripts/gpu/order_probe.py d128-s16k d128-s4k
"""

import sys
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from flashcore import _bench
from flashcore.functional import attention


def stamp(msg: str) -> None:
    print(f"{time.time():.3f} {msg}", flush=True)


def interleaved(fns, flush, iters):
    for fn in fns:
        for _ in range(3):
            fn()
    events = [[] for _ in fns]
    for _ in range(iters):
        for i, fn in enumerate(fns):
            flush.zero_()
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            events[i].append((s, e))
    torch.cuda.synchronize()
    times = [sorted(s.elapsed_time(e) for s, e in ev) for ev in events]
    return [t[len(t) // 2] for t in times]


def main() -> None:
    names = sys.argv[1:] or ["d128-s16k"]
    dev = torch.device("cuda")
    flush = torch.empty(_bench.FLUSH_BYTES, dtype=torch.uint8, device=dev)
    _bench._spin_up(dev)
    rows = [r for r in _bench.load_shapes(["fa"]) if r["name"] in names]
    for r in rows:
        q, k, v = _bench.make_inputs(r, dev)
        causal = r["mask"] != "none"
        fc = lambda: attention(q, k, v, causal=causal)  # noqa: E731

        def cudnn():
            with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
                return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)

        tf = lambda ms: _bench.flops(r) / (ms * 1e-3) / 1e12  # noqa: E731
        for rep in range(2):
            stamp(f"{r['name']} rep{rep} fc-first start")
            a = _bench.time_ms(fc, flush, 20)
            b = _bench.time_ms(cudnn, flush, 20)
            stamp(f"{r['name']} rep{rep} fc-first  flashcore {tf(a):7.1f} cudnn {tf(b):7.1f} ratio {b / a:.3f}")
            b = _bench.time_ms(cudnn, flush, 20)
            a = _bench.time_ms(fc, flush, 20)
            stamp(f"{r['name']} rep{rep} cudnn-first flashcore {tf(a):7.1f} cudnn {tf(b):7.1f} ratio {b / a:.3f}")
            a, b = interleaved([fc, cudnn], flush, 20)
            stamp(f"{r['name']} rep{rep} interleaved flashcore {tf(a):7.1f} cudnn {tf(b):7.1f} ratio {b / a:.3f}")


if __name__ == "__main__":
    main()
