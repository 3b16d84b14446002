"""Session 16: why some forward rows time slower in the Python bench than in the CLI (MQA 16/1 S2K:
550 TF/s in `python -m flashcore bench` against ~605 in `flashcore bench`, both on the same kernel).

For each row, in one process (run on the GPU machine with the wheel in /tmp/fcpy):
  1. the bench's own timing (_bench.time_ms: CUDA events, median) of flashcore and SDPA's cuDNN
     backend, with the bench's 1 GiB L2 flush and with the CLI's 100 MiB one, alternating, twice;
  2. the same calls back to back without a flush (L2 warm);
  3. torch.profiler's device time per kernel over 20 flushed calls of each backend: the kernels
     alone, without whatever sits between the events.
    PYTHONPATH=/tmp/fcpy python3 scripts/gpu/s16_row_probe.py [row names...]
"""

import sys

import torch
from torch.nn.attention import sdpa_kernel
from kernel_times import kernel_us

from flashcore import _bench

dev = torch.device("cuda")
names = sys.argv[1:] or ["mqa16-1-s2k", "gqa32-8-s8k-causal", "d128-s512", "d128-s4k"]
rows = {r["name"]: r for r in _bench.load_shapes(["full"]) if r["mode"] == "fwd"}
peers = _bench.sdpa_backends()


def back_to_back_ms(fn, n=50):
    for _ in range(5):
        fn()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n):
        fn()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e) / n


flushes = {"1GiB": torch.empty(1 << 30, dtype=torch.uint8, device=dev), "100MiB": torch.empty(100 << 20, dtype=torch.uint8, device=dev)}
print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
for name in names:
    r = rows[name]
    q, k, v = _bench.make_inputs(r, dev)
    fc = _bench._flashcore_call(r, q, k, v)
    cd_call = _bench._sdpa_call(r, q, k, v)

    def cudnn():
        with sdpa_kernel([peers["sdpa_cudnn"]]):
            return cd_call()

    fl = _bench.flops(r)
    print(f"=== {name} ({fl / 1e9:.1f} GFLOP)")
    for rep in range(2):
        for fname, flush in flushes.items():
            for bname, fn in (("flashcore", fc), ("sdpa_cudnn", cudnn)):
                ms = _bench.time_ms(fn, flush, 30)
                print(f"  pass {rep} flush {fname:7s} {bname:11s} {ms:8.4f} ms {fl / ms / 1e9:7.1f} TF/s")
    for bname, fn in (("flashcore", fc), ("sdpa_cudnn", cudnn)):
        ms = back_to_back_ms(fn)
        print(f"  back-to-back        {bname:11s} {ms:8.4f} ms {fl / ms / 1e9:7.1f} TF/s")
    for bname, fn in (("flashcore", fc), ("sdpa_cudnn", cudnn)):
        for kname, (us, cnt) in kernel_us(fn, flushes["1GiB"]).items():
            print(f"  kernel ({bname:10s}) {us:9.1f} us x{cnt:.0f}  {kname}  ({fl / us / 1e6:.1f} TF/s)")
    del q, k, v
    torch.cuda.empty_cache()
