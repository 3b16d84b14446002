"""Device time per call of each kernel a function launches (torch.profiler over flushed calls), for
the GPU probes (s16_row_probe.py, bwd_split_probe.py)."""

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
