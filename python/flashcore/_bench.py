"""`python -m flashcore validate|bench` and bench/peers.py: the shape matrix of shapes.toml (a copy
of bench/shapes.toml, kept identical by a test) run through flashcore and torch SDPA's backends in
one process.

Method (the same as the Rust `flashcore bench`): CUDA events around each run, 3 warm-up calls,
median of >= 20 timed runs, a 256 MiB buffer written before each timed run to flush L2; errors
against float64 on sampled query rows. FLOPs = 4·B·H·Sq·Sk·D, halved when causal.

This module imports nothing from flashcore at load time, so bench/peers.py can load it by path
where the package is not installed (SDPA backends only).
"""

import json
import math
import pathlib
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

SHAPES = pathlib.Path(__file__).with_name("shapes.toml")
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
BENCH_SUITES = ["seed", "fa", "gqa", "long"]
FLUSH_BYTES = 256 << 20


def _toml_loads(text: str) -> Dict[str, Any]:
    try:
        import tomllib  # Python >= 3.11
    except ImportError:
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError as e:
            raise ImportError("reading shapes.toml needs Python >= 3.11 or `pip install tomli`") from e
    return tomllib.loads(text)


def load_shapes(suites: Sequence[str], path: pathlib.Path = SHAPES) -> List[Dict[str, Any]]:
    """The rows of the shape matrix in any of `suites` (all rows for "full"), defaults filled in."""
    rows = _toml_loads(path.read_text())["shapes"]
    out = []
    for r in rows:
        if "full" in suites or set(r["suites"]) & set(suites):
            r = dict(r)
            r.setdefault("hkv", r["h"])
            r.setdefault("sk", r["sq"])
            r.setdefault("layout", "bshd")
            out.append(r)
    return out


def flops(r: Dict[str, Any]) -> float:
    f = 4.0 * r["b"] * r["h"] * r["sq"] * r["sk"] * r["d"]
    return f / 2 if r["mask"] != "none" else f


def visible(mask: str, sq: int, sk: int, rows: torch.Tensor) -> torch.Tensor:
    """[len(rows), Sk] bool: may query row i see key j."""
    j = torch.arange(sk, device=rows.device)[None, :]
    if mask == "none":
        return torch.ones(len(rows), sk, dtype=torch.bool, device=rows.device)
    return j <= rows[:, None] + (0 if mask == "causal" else sk - sq)


def reference_rows(q, k, v, mask: str, rows: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
    """Attention for the given query rows of q [B,H,Sq,D], k/v [B,Hkv,Sk,D] (any strides).

    dtype=float64: the oracle. dtype=q.dtype: the naive same-dtype implementation whose error sets
    the bar (scores rounded to the dtype, softmax in fp32, P rounded to the dtype, P·V).
    """
    b, h, sq, d = q.shape
    hkv, sk = k.shape[1], k.shape[2]
    g = h // hkv
    qq = q[:, :, rows].to(dtype).reshape(b, hkv, g * len(rows), d)
    kk, vv = k.to(dtype), v.to(dtype)
    vis = visible(mask, sq, sk, rows).repeat(g, 1)
    out = torch.empty(b, hkv, g * len(rows), d, dtype=dtype, device=q.device)
    for bi in range(b):  # one batch at a time bounds the score block to H·rows·Sk
        s = (qq[bi] @ kk[bi].transpose(-1, -2)) * (1.0 / math.sqrt(d))
        s = s.float() if dtype != torch.float64 else s
        p = torch.softmax(s.masked_fill(~vis, float("-inf")), dim=-1).nan_to_num(0.0)
        out[bi] = p.to(dtype) @ vv[bi]
    return out.reshape(b, h, len(rows), d)


def time_ms(fn: Callable[[], Any], flush: torch.Tensor, iters: int) -> float:
    """Median milliseconds of `iters` runs of fn, each after overwriting the L2-flush buffer."""
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


def make_inputs(r: Dict[str, Any], dev: torch.device):
    """q, k, v as [B, H, S, D] views in the row's memory layout (bshd rows are transposed views)."""
    dt = DTYPES[r["dtype"]]
    g = torch.Generator(device=dev)
    g.seed()

    def one(h: int, s: int) -> torch.Tensor:
        if r["layout"] == "bshd":
            return torch.randn(r["b"], s, h, r["d"], device=dev, dtype=dt, generator=g).transpose(1, 2)
        return torch.randn(r["b"], h, s, r["d"], device=dev, dtype=dt, generator=g)

    return one(r["h"], r["sq"]), one(r["hkv"], r["sk"]), one(r["hkv"], r["sk"])


def sdpa_backends() -> Dict[str, Any]:
    from torch.nn.attention import SDPBackend

    return {
        "sdpa_flash": SDPBackend.FLASH_ATTENTION,
        "sdpa_cudnn": SDPBackend.CUDNN_ATTENTION,
        "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION,
    }


def _sdpa_call(r, q, k, v):
    kwargs: Dict[str, Any] = {"enable_gqa": r["hkv"] != r["h"]}
    if r["mask"] == "causal":
        kwargs["is_causal"] = True
    elif r["mask"] == "causal_br":
        from torch.nn.attention.bias import causal_lower_right

        kwargs["attn_mask"] = causal_lower_right(r["sq"], r["sk"])
    return lambda: F.scaled_dot_product_attention(q, k, v, **kwargs)


def _flashcore_call(r, q, k, v):
    from flashcore.functional import attention

    causal = {"none": False, "causal": True, "causal_br": "bottom_right"}[r["mask"]]
    return lambda: attention(q, k, v, causal=causal)


def run(
    suites: Sequence[str],
    backends: Sequence[str],
    iters: int = 30,
    only: Optional[str] = None,
    timed: bool = True,
    log: Callable[[str], None] = print,
) -> List[Dict[str, Any]]:
    """One record per (shape, backend). With timed=False (validate) no timing, just errors and the bar."""
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name()
    flush = torch.empty(FLUSH_BYTES, dtype=torch.uint8, device=dev) if timed else None
    peers = sdpa_backends()
    records = []
    log(f"device: {name}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
    log(f"{'name':<22} {'backend':<15} {'ms':>9} {'TF/s':>8} {'max_err':>9} {'bar':>9} note")
    for r in load_shapes(suites):
        if only and only not in r["name"]:
            continue
        q, k, v = make_inputs(r, dev)
        sq = r["sq"]
        nrows = min(sq, 64)
        rows = torch.unique(torch.cat([torch.tensor([0, sq - 1]), torch.randint(0, sq, (nrows,))])).to(dev)
        ref = reference_rows(q, k, v, r["mask"], rows)
        naive_err = float((reference_rows(q, k, v, r["mask"], rows, dtype=q.dtype).double() - ref).abs().max())
        bar = 2 * naive_err + 1e-5
        for backend in backends:
            try:
                if backend == "flashcore":
                    fn = _flashcore_call(r, q, k, v)
                    out = fn()
                else:
                    fn = _sdpa_call(r, q, k, v)
                    from torch.nn.attention import sdpa_kernel

                    with sdpa_kernel([peers[backend]]):
                        out = fn()
                torch.cuda.synchronize()
                ms = float("nan")
                if timed:
                    if backend == "flashcore":
                        ms = time_ms(fn, flush, iters)
                    else:
                        with sdpa_kernel([peers[backend]]):
                            ms = time_ms(fn, flush, iters)
            except Exception as e:  # a backend that cannot serve the shape is reported, not fatal
                log(f"{r['name']:<22} {backend:<15} {'-':>9} {'-':>8} {'-':>9} {'-':>9} unsupported: "
                    f"{str(e).splitlines()[0][:80]}")
                continue
            got = out[:, :, rows].double()
            err = float((got - ref).abs().max())
            rel = float(torch.linalg.vector_norm(got - ref) / torch.linalg.vector_norm(ref))
            tf = flops(r) / (ms * 1e-3) / 1e12 if timed else float("nan")
            passed = err <= bar and not torch.isnan(got).any().item()
            log(f"{r['name']:<22} {backend:<15} {ms:>9.4f} {tf:>8.1f} {err:>9.2e} {bar:>9.2e} "
                f"{'pass' if passed else 'FAIL'}")
            records.append(dict(
                device=name, backend=backend, mode="fwd", dtype=r["dtype"], B=r["b"], H=r["h"], Hkv=r["hkv"],
                Sq=sq, Sk=r["sk"], D=r["d"], causal=r["mask"] != "none", mask=r["mask"], layout=r["layout"],
                name=r["name"], ms=ms, tflops=tf, max_abs_err=err, rel_err=rel, naive_max_abs_err=naive_err,
                passed=passed,
            ))
        del q, k, v, ref
        torch.cuda.empty_cache()
    return records


def plot(records: List[Dict[str, Any]], path: str, title: str = "") -> bool:
    """TF/s per shape, one line per backend; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names: List[str] = []
    for r in records:
        if r["name"] not in names:
            names.append(r["name"])
    backends = sorted({r["backend"] for r in records}, key=lambda b: (b != "flashcore", b))
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(names)), 5))
    for b in backends:
        by = {r["name"]: r["tflops"] for r in records if r["backend"] == b}
        ax.plot(range(len(names)), [by.get(n, float("nan")) for n in names], marker="o", label=b)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("TFLOP/s (forward)")
    ax.set_title(title or (records[0]["device"] if records else ""))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_json(records: List[Dict[str, Any]], path: str) -> None:
    pathlib.Path(path).write_text(json.dumps(records, indent=1))


def exit_code(records: List[Dict[str, Any]], validate: bool) -> int:
    if not records:
        return 1
    if validate and not all(r["passed"] for r in records):
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `python -m flashcore` or bench/peers.py")
