"""Where paged decode loses to a contiguous cache (issue 8), in one process on the GPU machine.

Times, for B32 H32 Hkv8 d128 bf16 decode (Sq 1) at Sk 8K and 32K: SDPA's cuDNN backend and
flashcore on the contiguous cache, and flashcore on page pools of 64 (and 16, 256) tokens whose
block table is shuffled (a fragmented cache, what `bench --suite decode` uses) or in order (each
sequence's pages consecutive in the pool, the same bytes as the contiguous cache). If the in-order
table runs at the contiguous speed, the paged rows lose to where the pages lie (DRAM / TLB
locality), not to the kernel's per-page work. Two passes, alternating, L2 flushed before each call.

  python3 scripts/gpu/paged_probe.py [--iters 30] [--json out.json]
(with the package importable, as scripts/gpu/env.sh and run_python.sh set it up)
"""
import argparse
import json

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import flashcore
from flashcore._bench import FLUSH_BYTES, time_ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    dev = torch.device("cuda")
    flush = torch.empty(FLUSH_BYTES, dtype=torch.uint8, device=dev)
    b, h, hkv, d = 32, 32, 8, 128
    records = []
    for sk in (8192, 32768):
        torch.manual_seed(sk)
        q = torch.randn(b, 1, h, d, device=dev, dtype=torch.bfloat16)
        k = torch.randn(b, sk, hkv, d, device=dev, dtype=torch.bfloat16)
        v = torch.randn_like(k)
        kv_bytes = 2 * k.numel() * k.element_size()
        seqlens = torch.full((b,), sk, dtype=torch.int32, device=dev)
        qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            ref = F.scaled_dot_product_attention(qt, kt, vt, enable_gqa=True).transpose(1, 2)
        calls = {}

        def cudnn():
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                return F.scaled_dot_product_attention(qt, kt, vt, enable_gqa=True)

        calls["sdpa_cudnn"] = cudnn
        calls["fc_contiguous"] = lambda: flashcore.attention_with_kvcache(q, k, v, seqlens)
        for page, order in ((64, "shuffled"), (64, "ordered"), (16, "shuffled"), (256, "shuffled")):
            n_pages = b * sk // page
            if order == "shuffled":
                table = torch.randperm(n_pages, device=dev).to(torch.int32).view(b, sk // page)
            else:
                table = torch.arange(n_pages, device=dev, dtype=torch.int32).view(b, sk // page)
            kp = torch.empty(n_pages, page, hkv, d, device=dev, dtype=k.dtype)
            vp = torch.empty_like(kp)
            kp[table.flatten().long()] = k.view(-1, page, hkv, d)
            vp[table.flatten().long()] = v.view(-1, page, hkv, d)
            calls[f"fc_paged{page}_{order}"] = (
                lambda kp=kp, vp=vp, table=table: flashcore.attention_with_kvcache(q, kp, vp, seqlens, table)
            )
        for name, fn in calls.items():
            if name.startswith("fc_"):
                err = float((fn().float() - ref.float()).abs().max())
                assert err < 2e-2, (name, err)
        for p in (1, 2):
            for name, fn in calls.items():
                ms = time_ms(fn, flush, args.iters)
                gbps = kv_bytes / (ms * 1e-3) / 1e9
                print(f"pass{p} Sk{sk:<6} {name:<22} {ms:8.4f} ms {gbps:7.0f} GB/s", flush=True)
                records.append({"pass": p, "Sk": sk, "call": name, "ms": ms, "gbps": gbps})
        del calls
        torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(records, fh, indent=1)


if __name__ == "__main__":
    main()
