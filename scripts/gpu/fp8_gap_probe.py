"""Why the Python FP8 suite's long rows time ~10% under the CLI's (same kernels; not the layout,
bench/NOTES.md session 20): one shape's per-tensor FP8 call timed by _bench.time_rounds under each
of the two benches' differences in turn. Run on the GPU machine with the wheel installed:
    python3 scripts/gpu/fp8_gap_probe.py [S] [D]
Conditions: the suite's (rounds with our bf16 kernel, 1 GiB flush), FP8 alone with the 1 GiB flush,
with the CLI's 2 x L2 flush, and with no flush; each twice, in that order and back. Then each
mode after 3 s of idle (the CLI computes its CPU reference between shapes; the suite keeps the
card busy): the SM clock the card keeps under a sustained FP8 load, not the timing method.
"""
import sys
import time

import torch

from flashcore import _bench
from flashcore.fp8 import attention_fp8, quantize_fp8

s = int(sys.argv[1]) if len(sys.argv) > 1 else 16384
d = int(sys.argv[2]) if len(sys.argv) > 2 else 256
b, h = 16384 // s, 2048 // d
dev = torch.device("cuda")


def outliers() -> torch.Tensor:
    x = torch.randn(b, h, s, d, device=dev)
    return torch.where(torch.rand_like(x) < 1e-3, 10 * torch.randn_like(x), x)


q, k, v = outliers(), outliers(), outliers()
(q8, qd), (k8, kd), (v8, vd) = (quantize_fp8(t) for t in (q, k, v))
qb, kb, vb = q.bfloat16(), k.bfloat16(), v.bfloat16()
fp8 = lambda: attention_fp8(q8, k8, v8, qd, kd, vd)  # noqa: E731
bf16 = _bench._flashcore_call(dict(mask="none"), qb, kb, vb)
big = torch.empty(_bench.FLUSH_BYTES, dtype=torch.uint8, device=dev)
l2 = torch.cuda.get_device_properties(dev).L2_cache_size
small = torch.empty(2 * l2, dtype=torch.uint8, device=dev)
none = torch.empty(0, dtype=torch.uint8, device=dev)
flops = 4 * b * h * s * s * d
conds = [
    ("suite: rounds with bf16, 1 GiB flush", {"bf16": bf16, "fp8": fp8}, big),
    ("fp8 alone, 1 GiB flush", {"fp8": fp8}, big),
    ("fp8 alone, 2 x L2 flush", {"fp8": fp8}, small),
    ("fp8 alone, no flush", {"fp8": fp8}, none),
]
print(f"b{b} h{h} s{s} d{d}, per-tensor FP8, TF/s of the median of 30")


def show(label, t):
    print(f"{label:<40} " + "  ".join(f"{n} {t[n]:.4f} ms {flops / t[n] / 1e9:7.1f}" for n in t))


for order in (conds, conds[::-1]):
    for label, fns, flush in order:
        show(label, _bench.time_rounds(fns, flush, 30))
for rep in range(2):
    for n, fn in (("fp8", fp8), ("bf16", bf16)):
        torch.cuda.synchronize()
        time.sleep(3)
        show(f"{n} after 3 s idle, 2 x L2 flush", _bench.time_rounds({n: fn}, small, 30))
    show("fp8 right after, 2 x L2 flush", _bench.time_rounds({"fp8": fp8}, small, 30))
# Run by run after idle: does the time grow as the load goes on?
torch.cuda.synchronize()
time.sleep(3)
ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(60)]
for a, e in ev:
    small.zero_()
    a.record()
    fp8()
    e.record()
torch.cuda.synchronize()
print("fp8 run by run after 3 s idle (TF/s):", " ".join(f"{flops / a.elapsed_time(e) / 1e9:.0f}" for a, e in ev))
