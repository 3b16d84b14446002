"""Helpers of the GPU probes (s16_row_probe.py, bwd_split_probe.py, lse_probe.py): device time per
call of each kernel a function launches (torch.profiler over flushed calls), and the probes' common
start (their rows, SDPA's backends, the L2-flush buffer)."""

import sys

import torch
from torch.profiler import ProfilerActivity, profile


def kernel_us(fn, flush, n=20, width=60):
    """{kernel name[:width]: (us per call, launches per call)} of `fn`, L2 flushed before each call;
    memsets and fills (the flush's) left out."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            flush.zero_()
            fn()
        torch.cuda.synchronize()
    out = {}
    for ev in prof.key_averages():
        t = getattr(ev, "device_time_total", None) or getattr(ev, "cuda_time_total", 0)
        if t and ev.key != "Memset (Device)" and "fill" not in ev.key and "FillFunctor" not in ev.key:
            out[ev.key[:width]] = (t / n, ev.count / n)
    return out


def probe_setup(defaults, suite, mode):
    """The rows named on the command line (else `defaults`) of shapes.toml's `suite` with `mode`
    ("fwd" or "bwd"), SDPA's backends, and a 1 GiB L2-flush buffer; prints the device line.
    Returns (device, rows, peers, flush)."""
    from flashcore import _bench

    dev = torch.device("cuda")
    rows = {r["name"]: r for r in _bench.load_shapes([suite]) if r["mode"] == mode}
    picked = [rows[n] for n in (sys.argv[1:] or defaults)]
    flush = torch.empty(1 << 30, dtype=torch.uint8, device=dev)
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    return dev, picked, _bench.sdpa_backends(), flush
