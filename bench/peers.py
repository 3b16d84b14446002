"""Time torch SDPA's backends (flash, cuDNN, efficient) on the shapes of bench/shapes.toml.

Same method as `flashcore bench`: CUDA events, warm-up, median of >= 20 runs, L2 flushed before
each timed run; errors against a float64 reference on sampled query rows. Writes records in the
bench/results schema.

    python bench/peers.py --suite all --json out.json
"""

import argparse
import json
import math
import pathlib
import sys
import tomllib

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = pathlib.Path(__file__).with_name("shapes.toml")
BACKENDS = {
    "sdpa_flash": SDPBackend.FLASH_ATTENTION,
    "sdpa_cudnn": SDPBackend.CUDNN_ATTENTION,
    "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION,
}
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def load_shapes(suites):
    rows = tomllib.loads(SHAPES.read_text())["shapes"]
    return [r for r in rows if set(r["suites"]) & set(suites)]


def flops(r):
    f = 4.0 * r["b"] * r["h"] * r["sq"] * r.get("sk", r["sq"]) * r["d"]
    return f / 2 if r["mask"] != "none" else f


def visible(mask, sq, sk, device):
    i = torch.arange(sq, device=device)[:, None]
    j = torch.arange(sk, device=device)[None, :]
    if mask == "none":
        return torch.ones(sq, sk, dtype=torch.bool, device=device)
    off = 0 if mask == "causal" else sk - sq
    return j <= i + off


def reference_rows(q, k, v, mask, rows):
    """float64 attention for the given query rows; q [B,H,Sq,D], k/v [B,Hkv,Sk,D]."""
    b, h, sq, d = q.shape
    hkv, sk = k.shape[1], k.shape[2]
    kk = k.double().repeat_interleave(h // hkv, dim=1)
    vv = v.double().repeat_interleave(h // hkv, dim=1)
    qq = q[:, :, rows].double()
    s = qq @ kk.transpose(-1, -2) / math.sqrt(d)
    vis = visible(mask, sq, sk, q.device)[rows]
    s = s.masked_fill(~vis, float("-inf"))
    p = torch.softmax(s, dim=-1).nan_to_num(0.0)
    return p @ vv


def time_ms(fn, flush, iters):
    for _ in range(3):
        fn()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for i in range(iters):
        flush.zero_()
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize()
    t = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
    return t[len(t) // 2]


def run(suites, iters, only):
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name()
    flush = torch.empty(256 << 20, dtype=torch.uint8, device=dev)
    records = []
    print(f"device: {name}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
    print(f"{'name':<22} {'backend':<15} {'ms':>9} {'TF/s':>8} {'max_err':>9} note")
    for r in load_shapes(suites):
        if only and only not in r["name"]:
            continue
        b, h, sq, d = r["b"], r["h"], r["sq"], r["d"]
        hkv, sk = r.get("hkv", h), r.get("sk", sq)
        dt = DTYPES[r["dtype"]]
        g = torch.Generator(device=dev)
        g.seed()
        q = torch.randn(b, h, sq, d, device=dev, dtype=dt, generator=g)
        k = torch.randn(b, hkv, sk, d, device=dev, dtype=dt, generator=g)
        v = torch.randn(b, hkv, sk, d, device=dev, dtype=dt, generator=g)
        nrows = min(sq, 64)
        rows = torch.unique(torch.cat([torch.tensor([0, sq - 1]), torch.randint(0, sq, (nrows,))])).to(dev)
        ref = reference_rows(q, k, v, r["mask"], rows)
        kwargs = {"enable_gqa": hkv != h}
        if r["mask"] == "causal":
            kwargs["is_causal"] = True
        elif r["mask"] == "causal_br":
            from torch.nn.attention.bias import causal_lower_right

            kwargs["attn_mask"] = causal_lower_right(sq, sk)
        for backend, sdp in BACKENDS.items():
            fn = lambda: F.scaled_dot_product_attention(q, k, v, **kwargs)  # noqa: E731
            try:
                with sdpa_kernel([sdp]):
                    out = fn()
                    torch.cuda.synchronize()
                    ms = time_ms(fn, flush, iters)
            except Exception as e:  # a backend that cannot serve the shape is reported, not fatal
                print(f"{r['name']:<22} {backend:<15} {'-':>9} {'-':>8} {'-':>9} unsupported: {str(e).splitlines()[0][:80]}")
                continue
            got = out[:, :, rows].double()
            err = (got - ref).abs()
            max_err = float(err.max())
            rel = float(torch.linalg.vector_norm(got - ref) / torch.linalg.vector_norm(ref))
            tf = flops(r) / (ms * 1e-3) / 1e12
            print(f"{r['name']:<22} {backend:<15} {ms:>9.4f} {tf:>8.1f} {max_err:>9.2e}")
            records.append(
                dict(device=name, backend=backend, mode="fwd", dtype=r["dtype"], B=b, H=h, Hkv=hkv, Sq=sq, Sk=sk, D=d,
                     causal=r["mask"] != "none", mask=r["mask"], layout="bhsd", name=r["name"], ms=ms, tflops=tf,
                     max_abs_err=max_err, rel_err=rel)
            )
        del q, k, v, ref
        torch.cuda.empty_cache()
    return records


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default="all")
    ap.add_argument("--json")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--only")
    a = ap.parse_args()
    suites = ["seed", "fa", "gqa", "long"] if a.suite == "all" else [a.suite]
    recs = run(suites, max(a.iters, 20), a.only)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(recs, indent=1))
        print(f"wrote {a.json}")
    return 0 if recs else 1


if __name__ == "__main__":
    sys.exit(main())
