"""Power, SM clock and sustained throughput of flashcore and cuDNN on the same rows (GPU machine,
after build_wheel.sh; the torch venv's python).

Session 12 found both backends slow down together over long back-to-back runs and read the long
rows as clock-limited. This tests that: for each row, phases of back-to-back calls (no L2 flush,
so the card stays loaded) alternate flashcore, cuDNN, flashcore, cuDNN; a background nvidia-smi
samples power, SM clock, temperature and the clock-event reasons every 50 ms. Per phase: calls,
sustained TF/s, and the mean of the samples in its middle 80%.

    python3 scripts/gpu/s14_power.py OUT_PREFIX [seconds] row...
"""

import subprocess
import sys
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from flashcore import _bench
from flashcore.functional import attention

FIELDS = "timestamp,power.draw,clocks.sm,clocks.mem,temperature.gpu,clocks_event_reasons.active"


def sampler(path: str) -> subprocess.Popen:
    f = open(path, "w")
    return subprocess.Popen(
        ["nvidia-smi", f"--query-gpu={FIELDS}", "--format=csv,noheader,nounits", "-lms", "50"], stdout=f
    )


def run_phase(fn, seconds: float):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.time()
    n = 0
    while time.time() - t0 < seconds:
        for _ in range(20):
            fn()
        n += 20
        torch.cuda.synchronize()
    t1 = time.time()
    return t0, t1, n


def parse(path: str):
    rows = []
    for line in open(path):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 6:
            continue
        try:
            from datetime import datetime

            ts = datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
            rows.append((ts, float(parts[1]), float(parts[2]), float(parts[3]), float(parts[4]), parts[5]))
        except ValueError:
            continue
    return rows


def main() -> None:
    prefix = sys.argv[1]
    seconds = float(sys.argv[2])
    names = sys.argv[3:]
    dev = torch.device("cuda")
    print(subprocess.run(["nvidia-smi", "-q", "-d", "POWER"], capture_output=True, text=True).stdout[:1500])
    log = prefix + "-smi.csv"
    smi = sampler(log)
    time.sleep(1.0)
    phases = []
    rows = [r for r in _bench.load_shapes(["fa", "gqa", "long", "bwd"]) if r["name"] in names]
    for r in rows:
        q, k, v = _bench.make_inputs(r, dev)
        causal = r["mask"] != "none"
        gqa = r.get("hkv", r["h"]) != r["h"]

        def fc(q=q, k=k, v=v):
            return attention(q, k, v, causal=causal)

        def cudnn(q=q, k=k, v=v):
            with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
                return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)

        fns = (("flashcore", fc), ("cudnn", cudnn))
        if r.get("mode") == "bwd":
            # The backward alone: one forward keeps its graph, each call is the gradient.
            dout = torch.randn_like(q)

            def backward_of(fwd):
                leaves = [t.detach().requires_grad_() for t in (q, k, v)]
                with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
                    out = fwd(*leaves)
                return lambda: torch.autograd.grad(out, leaves, dout, retain_graph=True)

            fns = (("flashcore", backward_of(fc)), ("cudnn", backward_of(cudnn)))

        for rep in range(2):
            for name, fn in fns:
                t0, t1, n = run_phase(fn, seconds)
                tf = _bench.flops(r) * n / (t1 - t0) / 1e12
                phases.append((r["name"], rep, name, t0, t1, n, tf))
                time.sleep(0.3)
    time.sleep(0.5)
    smi.terminate()
    smi.wait()
    samples = parse(log)
    print(f"{'row':<22} {'rep':>3} {'backend':<10} {'calls':>6} {'TF/s':>7} {'W':>6} {'SM MHz':>7} {'mem MHz':>7} {'C':>4}  reasons")
    for name, rep, be, t0, t1, n, tf in phases:
        a, b = t0 + 0.1 * (t1 - t0), t1 - 0.1 * (t1 - t0)
        s = [x for x in samples if a <= x[0] <= b]
        if not s:
            print(f"{name:<22} {rep:>3} {be:<10} {n:>6} {tf:7.1f}  (no samples)")
            continue
        m = lambda i: sum(x[i] for x in s) / len(s)  # noqa: E731
        reasons = sorted({x[5] for x in s})
        print(f"{name:<22} {rep:>3} {be:<10} {n:>6} {tf:7.1f} {m(1):6.1f} {m(2):7.0f} {m(3):7.0f} {m(4):4.0f}  {' '.join(reasons)}")


if __name__ == "__main__":
    main()
