"""Does asking for the LSE (what a training forward does: autograd saves it for the backward) cost
the Hopper forward speed? Per row, in one process with rounds: flashcore.attention without and with
return_lse, and the training path's forward (q, k, v requiring grad) beside cuDNN's; TF/s.
    PYTHONPATH=<flashcore install> python3 scripts/gpu/lse_probe.py [row names...]
"""

import torch
from torch.nn.attention import sdpa_kernel
from kernel_times import probe_setup

from flashcore import _bench
from flashcore.functional import attention

DEFAULT_ROWS = ["long-32k-causal", "long-32k", "d128-s4k-causal", "d128-s4k", "d64-s4k", "d64-s4k-causal"]
dev, picked, peers, flush = probe_setup(DEFAULT_ROWS, "full", "fwd")
for r in picked:
    name = r["name"]
    q, k, v = _bench.make_inputs(r, dev)
    causal = r["mask"] != "none"
    qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))

    def cudnn():
        with sdpa_kernel([peers["sdpa_cudnn"]]):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)

    fns = {
        "no_lse": lambda: attention(q, k, v, causal=causal),
        "lse": lambda: attention(q, k, v, causal=causal, return_lse=True),
        "train_fwd": lambda: attention(qg, kg, vg, causal=causal),
        "cudnn": cudnn,
    }
    ms = _bench.time_rounds(fns, flush, 20)
    fl = _bench.flops(r)
    print(f"{name:22} " + " ".join(f"{n} {fl / (t * 1e-3) / 1e12:6.1f}" for n, t in ms.items()))
