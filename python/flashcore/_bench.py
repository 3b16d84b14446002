"""`python -m flashcore validate|bench` and bench/peers.py: the shape matrix of shapes.toml (a copy
of bench/shapes.toml, kept identical by a test) run through flashcore and torch SDPA's backends in
one process.

Method (as the Rust `flashcore bench`, whose flush is 2 x L2: its host path is short): CUDA events
around each run, 3 warm-up calls, median of >= 20 timed runs, a 1 GiB buffer written before each
timed run to flush L2 (FLUSH_BYTES); errors against float64 on sampled query rows. The backends of
a row are timed in rounds (time_rounds): each round runs every backend once, the first one
rotating, so all of them meet the card's clocks at the same points; `--sequential` times each
backend's runs as one block instead (the method before session 17).
FLOPs = 4·B·H·Sq·Sk·D, halved when causal.

Backward rows (the `backward` section of shapes.toml, records with mode "bwd"): the forward runs
once and its autograd graph is kept; the timed call is `torch.autograd.grad(out, (q, k, v), dout,
retain_graph=True)`, i.e. the backward alone (for flashcore: the native prep, main and post
kernels plus the gradient allocations; for SDPA: the backend's backward that its forward chose).
FLOPs = 2.5 x the forward's. dq, dk and dv are checked against a float64 autograd reference on
sampled (batch, kv head) groups (whole groups: a group's gradients depend only on its own heads),
each within 2 x the naive same-dtype backward's error + 1e-5.

This module imports nothing from flashcore at load time, so bench/peers.py can load it by path
where the package is not installed (SDPA backends only).
"""

import contextlib
import json
import math
import pathlib
import sys
import time
from typing import Any, Callable, ContextManager, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

SHAPES = pathlib.Path(__file__).with_name("shapes.toml")
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
BENCH_SUITES = ["seed", "fa", "gqa", "long", "bwd"]
# 1 GiB: far past L2 (50 MB), and ~0.35 ms of device time per write, so the host has run ahead by
# the time the timed call's start event comes up. With 256 MiB (~0.09 ms) a call whose host path
# (autograd, allocation, launches) outlasted the flush left the device idle after the start event,
# and rows under ~0.3 ms timed the host instead (bench/NOTES.md, session 6: the MQA backward 0.40
# ms against 0.14 of device time). Host time per call is reported by scripts/gpu/host_overhead.py.
FLUSH_BYTES = 1 << 30


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
    """The rows of the shape matrix in any of `suites` (all rows for "full"), defaults filled in:
    the forward rows (mode "fwd"), then the backward rows (mode "bwd")."""
    doc = _toml_loads(path.read_text())
    out = []
    for mode, section in (("fwd", "shapes"), ("bwd", "backward")):
        for r in doc.get(section, []):
            if "full" in suites or set(r["suites"]) & set(suites):
                r = dict(r, mode=mode)
                r.setdefault("hkv", r["h"])
                r.setdefault("sk", r["sq"])
                r.setdefault("layout", "bshd")
                out.append(r)
    return out


def flops(r: Dict[str, Any]) -> float:
    """Forward: 4·B·H·Sq·Sk·D, halved when causal; backward rows: 2.5 x that (FlashAttention's count)."""
    f = 4.0 * r["b"] * r["h"] * r["sq"] * r["sk"] * r["d"]
    f = f / 2 if r["mask"] != "none" else f
    return 2.5 * f if r.get("mode") == "bwd" else f


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


def pick_groups(r: Dict[str, Any], budget: int = 1 << 29) -> List[Any]:
    """(batch, kv head) groups whose gradients are checked: the first, the last and a random one,
    as many as fit `budget` score elements (G·Sq·Sk each; at least one)."""
    g = r["h"] // r["hkv"]
    n = max(1, min(3, budget // max(1, g * r["sq"] * r["sk"])))
    last = (r["b"] - 1, r["hkv"] - 1)
    picked = [(0, 0)]
    cands = [last, (int(torch.randint(r["b"], ())), int(torch.randint(r["hkv"], ())))]
    for c in cands:
        if len(picked) < n and c not in picked:
            picked.append(c)
    return picked


def reference_group_grads(q, k, v, dout, mask: str, group, dtype=torch.float64):
    """(dq [G, Sq, D], dk [Sk, D], dv [Sk, D]) of batch b, kv head kh, by autograd in `dtype`.

    dtype=float64: the oracle. dtype=q.dtype: the naive same-dtype backward that sets the bar
    (autograd through reference_rows' naive forward: scores in the dtype, softmax in fp32, P
    rounded to the dtype). Rows that see no key give zero gradients (no softmax over nothing).
    """
    b, kh = group
    h, hkv, sq, d = q.shape[1], k.shape[1], q.shape[2], q.shape[3]
    sk, g = k.shape[2], h // hkv
    qq = q[b, kh * g:(kh + 1) * g].detach().to(dtype).requires_grad_()
    kk = k[b, kh].detach().to(dtype).requires_grad_()
    vv = v[b, kh].detach().to(dtype).requires_grad_()
    vis = visible(mask, sq, sk, torch.arange(sq, device=q.device))
    seen = vis.any(-1, keepdim=True)
    s = (qq @ kk.transpose(-1, -2)) * (1.0 / math.sqrt(d))
    s = s if dtype == torch.float64 else s.float()
    p = torch.softmax(s.masked_fill(~vis, float("-inf")).masked_fill(~seen, 0.0), dim=-1) * seen
    out = p.to(dtype) @ vv
    return torch.autograd.grad(out, (qq, kk, vv), dout[b, kh * g:(kh + 1) * g].to(dtype))


def time_ms(fn: Callable[[], Any], flush: torch.Tensor, iters: int) -> float:
    """Median milliseconds of `iters` runs of fn, each after overwriting the L2-flush buffer."""
    return time_rounds({"fn": fn}, flush, iters)["fn"]


def time_rounds(
    fns: Dict[str, Callable[[], Any]],
    flush: torch.Tensor,
    iters: int,
    ctxs: Optional[Dict[str, Callable[[], ContextManager]]] = None,
    rounds: bool = True,
) -> Dict[str, float]:
    """Median milliseconds of `iters` runs of each of fns, each run after overwriting the L2-flush
    buffer and between two CUDA events; ctxs[name] makes the context a run of fns[name] needs (an
    SDPA backend's sdpa_kernel). With `rounds`, round i runs every fn once, starting at fn i mod n:
    whichever fn would go first in a row meets the clocks the previous row left (a card that just
    ran a long row sits at lowered clocks for a while), and rotating spreads that over all of
    them. Without, each fn's warm-up and runs form one block, in order."""
    ctxs = ctxs or {}
    names = list(fns)
    ev = {n: [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
          for n in names}

    def warm(n: str) -> None:
        with ctxs.get(n, contextlib.nullcontext)():
            for _ in range(3):
                fns[n]()

    def timed(n: str, i: int) -> None:
        with ctxs.get(n, contextlib.nullcontext)():
            flush.zero_()
            ev[n][i][0].record()
            fns[n]()
            ev[n][i][1].record()

    if rounds:
        for n in names:
            warm(n)
        for i in range(iters):
            for j in range(len(names)):
                timed(names[(i + j) % len(names)], i)
    else:
        for n in names:
            warm(n)
            for i in range(iters):
                timed(n, i)
    torch.cuda.synchronize()
    out = {}
    for n in names:
        t = sorted(s.elapsed_time(e) for s, e in ev[n])
        out[n] = t[len(t) // 2]
    return out


def _time_row(r, fns, peers, flush, iters, rounds, log) -> Dict[str, float]:
    """time_rounds over a row's backends (each SDPA one under its sdpa_kernel); if a run fails
    there, each backend on its own, and one that fails alone is reported and left out, as a
    backend that cannot serve the shape is."""
    ctxs = {b: _backend_ctx(b, peers) for b in fns}
    try:
        return time_rounds(fns, flush, iters, ctxs, rounds)
    except Exception:
        times = {}
        for b, fn in fns.items():
            try:
                times[b] = time_rounds({b: fn}, flush, iters, {b: ctxs[b]})[b]
            except Exception as e:
                _log_unsupported(log, r, b, e)
        return times


def _grad_errors(got, want, naive):
    """(passed, the gradient closest to its bar: max abs error, relative L2 error, naive max error)."""
    passed, worst, margin = True, (0.0, 0.0, 0.0), -1.0
    for gs, ws, ns in zip(got, want, naive):  # dq, dk, dv: lists over the checked groups
        g, w, n = (torch.cat([t.reshape(-1).double() for t in x]) for x in (gs, ws, ns))
        err, nerr = float((g - w).abs().max()), float((n - w).abs().max())
        rel = float(torch.linalg.vector_norm(g - w) / torch.linalg.vector_norm(w).clamp_min(1e-300))
        bar = 2 * nerr + 1e-5
        passed = passed and err <= bar and not torch.isnan(g).any().item()
        if err / bar > margin:
            margin, worst = err / bar, (err, rel, nerr)
    return passed, worst


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


def _backend_ctx(backend: str, peers: Dict[str, Any]) -> Callable[[], ContextManager]:
    """What a call of `backend` runs under: sdpa_kernel pinning an SDPA backend, else nothing."""
    if backend not in peers:
        return contextlib.nullcontext
    from torch.nn.attention import sdpa_kernel

    return lambda: sdpa_kernel([peers[backend]])


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


def _record(r, name, backend, ms, err, rel, naive_err, passed, **extra):
    tf = flops(r) / (ms * 1e-3) / 1e12 if ms == ms else float("nan")
    return dict(
        device=name, backend=backend, mode=r["mode"], dtype=r["dtype"], B=r["b"], H=r["h"], Hkv=r["hkv"],
        Sq=r["sq"], Sk=r["sk"], D=r["d"], causal=r["mask"] != "none", mask=r["mask"], layout=r["layout"],
        name=r["name"], ms=ms, tflops=tf, max_abs_err=err, rel_err=rel, naive_max_abs_err=naive_err,
        passed=passed, **extra,
    )


def _log_row(log, r, backend, ms, tf, err, bar, passed, note=""):
    log(f"{r['name']:<22} {backend:<15} {ms:>9.4f} {tf:>8.1f} {err:>9.2e} {bar:>9.2e} "
        f"{'pass' if passed else 'FAIL'}{note}")


def _log_unsupported(log, r, backend, e):
    log(f"{r['name']:<22} {backend:<15} {'-':>9} {'-':>8} {'-':>9} {'-':>9} unsupported: "
        f"{str(e).splitlines()[0][:80] if str(e) else type(e).__name__}")


def run_bwd_row(r, backends, name, flush, iters, timed, log, rounds=True) -> List[Dict[str, Any]]:
    """One backward row: per backend, the forward once (graph kept) and gradients checked on
    sampled groups against float64; then the backwards alone timed (time_rounds). See the module
    docstring."""
    dev = torch.device("cuda")
    q, k, v = make_inputs(r, dev)
    dout = torch.randn(r["b"], r["sq"], r["h"], r["d"], device=dev, dtype=q.dtype)
    dout = dout.transpose(1, 2) if r["layout"] == "bshd" else dout.transpose(1, 2).contiguous()
    groups = pick_groups(r)
    want = [reference_group_grads(q, k, v, dout, r["mask"], gr) for gr in groups]
    naive = [reference_group_grads(q, k, v, dout, r["mask"], gr, dtype=q.dtype) for gr in groups]
    torch.cuda.empty_cache()
    peers = sdpa_backends()
    g = r["h"] // r["hkv"]
    grads, checked = {}, {}
    for backend in backends:
        leaves = [t.detach().requires_grad_() for t in (q, k, v)]
        try:
            if backend == "flashcore":
                fn = _flashcore_call(r, *leaves)
            else:
                fn = _sdpa_call(r, *leaves)
            with _backend_ctx(backend, peers)():
                out = fn()  # the backward kernel is chosen here, by the forward
            # The graph stays alive in the closure until the row's timing is done.
            grad = lambda out=out, leaves=leaves: torch.autograd.grad(out, leaves, dout, retain_graph=True)  # noqa: E731
            dq, dk, dv = grad()
            torch.cuda.synchronize()
            got = (
                [dq[b, kh * g:(kh + 1) * g] for b, kh in groups],
                [dk[b, kh] for b, kh in groups],
                [dv[b, kh] for b, kh in groups],
            )
            checked[backend] = _grad_errors(got, zip(*want), zip(*naive))
            del dq, dk, dv, got
        except Exception as e:  # a backend that cannot serve the shape is reported, not fatal
            _log_unsupported(log, r, backend, e)
            continue
        finally:
            out = None
        grads[backend] = grad
    times = _time_row(r, grads, peers, flush, iters, rounds, log) if timed else {}
    records = []
    for backend, (passed, (err, rel, nerr)) in checked.items():
        if timed and backend not in times:
            continue  # failed in the timing (reported by _time_row)
        ms = times.get(backend, float("nan"))
        rec = _record(r, name, backend, ms, err, rel, nerr, passed, groups_checked=len(groups))
        _log_row(log, r, backend, ms, rec["tflops"], err, 2 * nerr + 1e-5, passed, f"  ({len(groups)} groups)")
        records.append(rec)
    return records


def _spin_up(dev: torch.device, seconds: float = 0.5) -> None:
    """Keeps the GPU busy for a moment before the first timed row: a process's first row otherwise
    runs on an idle card's clocks (a final run on 2026-11-26 had its first row, D128 S512, at 0.76x
    cuDNN; 0.96x once warmed)."""
    a = torch.randn(4096, 4096, device=dev, dtype=torch.bfloat16)
    torch.cuda.synchronize()
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        for _ in range(10):
            a @ a
        torch.cuda.synchronize()


def run(
    suites: Sequence[str],
    backends: Sequence[str],
    iters: int = 30,
    only: Optional[str] = None,
    timed: bool = True,
    log: Callable[[str], None] = print,
    rounds: bool = True,
    layout: Optional[str] = None,
) -> List[Dict[str, Any]]:
    """One record per (shape, backend). With timed=False (validate) no timing, just errors and the
    bar. `rounds`: time_rounds's order (False: each backend's runs in one block). `layout`, if
    given, replaces every row's memory layout (every backend gets the same tensors)."""
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name()
    flush = torch.empty(FLUSH_BYTES, dtype=torch.uint8, device=dev) if timed else None
    peers = sdpa_backends()
    records = []
    log(f"device: {name}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
    if timed:
        _spin_up(dev)
    log(f"{'name':<22} {'backend':<15} {'ms':>9} {'TF/s':>8} {'max_err':>9} {'bar':>9} note")
    for r in load_shapes(suites):
        if only and only not in r["name"]:
            continue
        if layout is not None:
            r["layout"] = layout
        if r["mode"] == "bwd":
            records += run_bwd_row(r, backends, name, flush, iters, timed, log, rounds)
            torch.cuda.empty_cache()
            continue
        q, k, v = make_inputs(r, dev)
        sq = r["sq"]
        nrows = min(sq, 64)
        rows = torch.unique(torch.cat([torch.tensor([0, sq - 1]), torch.randint(0, sq, (nrows,))])).to(dev)
        ref = reference_rows(q, k, v, r["mask"], rows)
        naive_err = float((reference_rows(q, k, v, r["mask"], rows, dtype=q.dtype).double() - ref).abs().max())
        bar = 2 * naive_err + 1e-5
        fns, checked = {}, {}
        for backend in backends:
            try:
                fn = _flashcore_call(r, q, k, v) if backend == "flashcore" else _sdpa_call(r, q, k, v)
                with _backend_ctx(backend, peers)():
                    out = fn()
                torch.cuda.synchronize()
            except Exception as e:  # a backend that cannot serve the shape is reported, not fatal
                _log_unsupported(log, r, backend, e)
                continue
            got = out[:, :, rows].double()
            err = float((got - ref).abs().max())
            rel = float(torch.linalg.vector_norm(got - ref) / torch.linalg.vector_norm(ref))
            checked[backend] = (err, rel, err <= bar and not torch.isnan(got).any().item())
            fns[backend] = fn
            del out, got
        times = _time_row(r, fns, peers, flush, iters, rounds, log) if timed else {}
        for backend, (err, rel, passed) in checked.items():
            if timed and backend not in times:
                continue  # failed in the timing (reported by _time_row)
            ms = times.get(backend, float("nan"))
            rec = _record(r, name, backend, ms, err, rel, naive_err, passed)
            _log_row(log, r, backend, ms, rec["tflops"], err, bar, passed)
            records.append(rec)
        del q, k, v, ref, fns
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
    ax.set_ylabel("TFLOP/s (backward rows: 2.5 x forward FLOPs)")
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


# ---- Inference suites: `bench --suite decode|varlen` (flashcore's inference paths, SDPA beside). ----
# Decode: one new query per sequence against a full KV cache, bf16, timed like the rows above. The
# metric is achieved bandwidth: K and V bytes over the time (the kernel must read them once), and
# its ratio to a device-to-device copy (`copy_` of a buffer of the same size, timed in the same
# process; its bandwidth counts the read and the write, i.e. the HBM traffic a copy moves). SDPA
# has neither a paged cache nor GQA without repeating K/V in memory: its rows time the same
# contiguous tensors with enable_gqa=True (what each backend does with that is its own business),
# and paged rows have no SDPA peer.
INFER_SUITES = ["decode", "varlen"]
# (name, B, H, Hkv, D, Sk, page_size or 0)
DECODE_ROWS = [
    ("decode-b32-8k", 32, 32, 8, 128, 8192, 0),
    ("decode-b32-8k-paged64", 32, 32, 8, 128, 8192, 64),
    ("decode-b32-32k", 32, 32, 8, 128, 32768, 0),
    ("decode-b32-32k-paged64", 32, 32, 8, 128, 32768, 64),
    ("decode-b1-128k", 1, 32, 8, 128, 131072, 0),
    ("decode-b1-512k", 1, 32, 8, 128, 524288, 0),
    ("decode-b1-1m", 1, 32, 8, 128, 1048576, 0),
]


def _infer_record(name, backend, mode, b, h, hkv, sq, sk, d, causal, ms, tf, err, naive_err, passed, **extra):
    return dict(
        device=torch.cuda.get_device_name(), backend=backend, mode=mode, dtype="bf16", B=b, H=h, Hkv=hkv, Sq=sq,
        Sk=sk, D=d, causal=causal, mask="causal_br" if causal else "none", layout="bshd", name=name, ms=ms,
        tflops=tf, max_abs_err=err, rel_err=float("nan"), naive_max_abs_err=naive_err, passed=passed, **extra,
    )


def _decode_reference(q, k, v, bs, dtype):
    """Rows of batches bs: q [B, 1, H, D], k/v [B, Sk, Hkv, D] -> [len(bs), H, D] (oracle in float64,
    or the naive same-dtype implementation), one kv head at a time to bound memory."""
    h, hkv = q.shape[2], k.shape[2]
    g = h // hkv
    out = []
    for b in bs:
        heads = []
        for kh in range(hkv):
            qq = q[b, 0, kh * g:(kh + 1) * g].to(dtype)
            kk, vv = k[b, :, kh].to(dtype), v[b, :, kh].to(dtype)
            s = (qq @ kk.T) * (1.0 / math.sqrt(q.shape[-1]))
            p = torch.softmax(s if dtype == torch.float64 else s.float(), -1)
            heads.append(p.to(dtype) @ vv)
        out.append(torch.cat(heads))
    return torch.stack(out).double()


def run_decode(backends, iters: int, only: Optional[str], log, rounds: bool = True) -> List[Dict[str, Any]]:
    import flashcore

    dev = torch.device("cuda")
    flush = torch.empty(FLUSH_BYTES, dtype=torch.uint8, device=dev)
    peers = sdpa_backends()
    records = []
    log(f"{'name':<24} {'backend':<15} {'ms':>9} {'GB/s':>8} {'copy':>8} {'ratio':>6} {'max_err':>9} {'bar':>9}")
    for name, b, h, hkv, d, sk, page in DECODE_ROWS:
        if only and only not in name:
            continue
        q = torch.randn(b, 1, h, d, device=dev, dtype=torch.bfloat16)
        k = torch.randn(b, sk, hkv, d, device=dev, dtype=torch.bfloat16)
        v = torch.randn_like(k)
        kv_bytes = 2 * k.numel() * k.element_size()
        seqlens = torch.full((b,), sk, dtype=torch.int32, device=dev)
        bs = sorted({0, b - 1})
        ref = _decode_reference(q, k, v, bs, torch.float64)
        naive_err = float((_decode_reference(q, k, v, bs, q.dtype) - ref).abs().max())
        bar = 2 * naive_err + 1e-5
        calls = {}
        if page:
            n_pages = b * sk // page
            table = torch.randperm(n_pages, device=dev).to(torch.int32).view(b, sk // page)
            kp = torch.empty(n_pages, page, hkv, d, device=dev, dtype=k.dtype)
            vp = torch.empty_like(kp)
            kp[table.flatten().long()] = k.view(-1, page, hkv, d)
            vp[table.flatten().long()] = v.view(-1, page, hkv, d)
            calls["flashcore"] = lambda: flashcore.attention_with_kvcache(q, kp, vp, seqlens, table)
        else:
            calls["flashcore"] = lambda: flashcore.attention_with_kvcache(q, k, v, seqlens)
            for be in backends:
                if be in peers:  # SDPA has no paged cache: paged rows have no peer
                    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
                    calls[be] = lambda qt=qt, kt=kt, vt=vt: F.scaled_dot_product_attention(qt, kt, vt, enable_gqa=True)
        fns, checked = {}, {}
        for be, fn in calls.items():
            try:
                with _backend_ctx(be, peers)():
                    out = fn()
                torch.cuda.synchronize()
            except Exception as e:
                log(f"{name:<24} {be:<15} unsupported: {str(e).splitlines()[0][:80] if str(e) else type(e).__name__}")
                continue
            got = (out[bs, 0] if be == "flashcore" else out[bs, :, 0]).double()
            err = float((got - ref).abs().max())
            checked[be] = (err, err <= bar and not torch.isnan(got).any().item())
            fns[be] = fn
            del out, got
        # The copy of the same bytes takes its turn in the rounds too (its read + write).
        src = torch.empty(kv_bytes, dtype=torch.uint8, device=dev)
        dst = torch.empty_like(src)
        times = time_rounds({"copy": lambda: dst.copy_(src), **fns}, flush, iters,
                            {be: _backend_ctx(be, peers) for be in fns}, rounds)
        copy_gbps = 2 * kv_bytes / (times["copy"] * 1e-3) / 1e9
        del src, dst
        for be, (err, passed) in checked.items():
            ms = times[be]
            gbps = kv_bytes / (ms * 1e-3) / 1e9
            tf = 4.0 * b * h * sk * d / (ms * 1e-3) / 1e12
            log(f"{name:<24} {be:<15} {ms:>9.4f} {gbps:>8.0f} {copy_gbps:>8.0f} {gbps / copy_gbps:>6.2f} "
                f"{err:>9.2e} {bar:>9.2e} {'pass' if passed else 'FAIL'}")
            records.append(_infer_record(name, be, "decode", b, h, hkv, 1, sk, d, False, ms, tf, err, naive_err, passed,
                                         gbps=gbps, copy_gbps=copy_gbps, page_size=page, kv_bytes=kv_bytes))
        del q, k, v, calls, fns
        torch.cuda.empty_cache()
    return records


def varlen_lengths(total: int = 65536, lo: int = 100, hi: int = 8192, seed: int = 0) -> List[int]:
    """Sequence lengths drawn uniformly from [lo, hi] (seeded) until `total` tokens; the last one
    takes the remainder (at least lo)."""
    g = torch.Generator().manual_seed(seed)
    out: List[int] = []
    while sum(out) < total:
        n = int(torch.randint(lo, hi + 1, (), generator=g))
        out.append(min(n, total - sum(out)) if total - sum(out) >= lo else n)
    return out


def run_varlen(iters: int, only: Optional[str], log, rounds: bool = True) -> List[Dict[str, Any]]:
    """Mixed-length prefill (64K tokens, lengths 100..8K) through attention_varlen against dense
    attention over sequences of the mean length (same token count). TF/s by the exact visible
    (query, key) pairs of each call: 4·H·D per pair."""
    import flashcore

    dev = torch.device("cuda")
    flush = torch.empty(FLUSH_BYTES, dtype=torch.uint8, device=dev)
    records = []
    h, d = 16, 128
    lengths = varlen_lengths()
    total = sum(lengths)
    mean = round(total / len(lengths))
    cu = torch.tensor([0] + torch.tensor(lengths).cumsum(0).tolist(), dtype=torch.int32, device=dev)
    log(f"varlen: {len(lengths)} sequences, {total} tokens, lengths {min(lengths)}..{max(lengths)}, mean {mean}")
    log(f"{'name':<24} {'backend':<15} {'ms':>9} {'TF/s':>8} {'max_err':>9} {'bar':>9}")
    for causal in (False, True):
        name = f"varlen-64k-{'causal' if causal else 'full'}"
        if only and only not in name:
            continue
        q = torch.randn(total, h, d, device=dev, dtype=torch.bfloat16)
        k, v = torch.randn_like(q), torch.randn_like(q)
        pairs = sum(n * (n + 1) // 2 if causal else n * n for n in lengths)
        fn = lambda: flashcore.attention_varlen(q, k, v, cu, cu, max(lengths), max(lengths), causal=causal)  # noqa: E731
        out = fn()
        # Check the first and the longest sequence against float64.
        errs, nerrs = [], []
        for i in sorted({0, lengths.index(max(lengths))}):
            s0, s1 = int(cu[i]), int(cu[i + 1])
            rows = slice(s0, s1)
            qq, kk, vv = (t[rows].transpose(0, 1)[None] for t in (q, k, v))
            mask = "causal_br" if causal else "none"
            sel = torch.unique(torch.cat([torch.tensor([0, s1 - s0 - 1]), torch.randint(0, s1 - s0, (32,))])).to(dev)
            ref = reference_rows(qq, kk, vv, mask, sel)
            naive = reference_rows(qq, kk, vv, mask, sel, dtype=q.dtype).double()
            errs.append(float((out[rows].transpose(0, 1)[None][:, :, sel].double() - ref).abs().max()))
            nerrs.append(float((naive - ref).abs().max()))
        err, naive_err = max(errs), max(nerrs)
        bar = 2 * naive_err + 1e-5
        del out
        nb = max(1, round(total / mean))
        qd = torch.randn(nb, mean, h, d, device=dev, dtype=torch.bfloat16)
        kd, vd = torch.randn_like(qd), torch.randn_like(qd)
        dense = lambda: flashcore.attention(qd, kd, vd, causal=causal, layout="bshd")  # noqa: E731
        times = time_rounds({"varlen": fn, "dense": dense}, flush, iters, rounds=rounds)
        ms, ms_d = times["varlen"], times["dense"]
        tf = 4.0 * h * d * pairs / (ms * 1e-3) / 1e12
        passed = err <= bar
        log(f"{name:<24} {'flashcore':<15} {ms:>9.4f} {tf:>8.1f} {err:>9.2e} {bar:>9.2e} {'pass' if passed else 'FAIL'}")
        records.append(_infer_record(name, "flashcore", "varlen", len(lengths), h, h, max(lengths), max(lengths), d,
                                     causal, ms, tf, err, naive_err, passed, tokens=total, visible_pairs=pairs))
        pairs_d = nb * (mean * (mean + 1) // 2 if causal else mean * mean)
        tf_d = 4.0 * h * d * pairs_d / (ms_d * 1e-3) / 1e12
        log(f"{name + '-dense-mean':<24} {'flashcore':<15} {ms_d:>9.4f} {tf_d:>8.1f}   (B={nb} S={mean}; varlen/dense "
            f"TF/s {tf / tf_d:.2f})")
        records.append(_infer_record(name + "-dense-mean", "flashcore", "fwd", nb, h, h, mean, mean, d, causal, ms_d,
                                     tf_d, float("nan"), float("nan"), True, tokens=nb * mean, visible_pairs=pairs_d))
        del q, k, v, qd, kd, vd
        torch.cuda.empty_cache()
    return records


def run_infer(suite: str, backends: Sequence[str], iters: int = 30, only: Optional[str] = None,
              log: Callable[[str], None] = print, rounds: bool = True) -> List[Dict[str, Any]]:
    log(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
    if suite == "decode":
        return run_decode(backends, iters, only, log, rounds)
    return run_varlen(iters, only, log, rounds)


def run_fp8(iters: int = 30, only: Optional[str] = None, log: Callable[[str], None] = print,
            rounds: bool = True, layout: str = "bhsd") -> List[Dict[str, Any]]:
    """`bench --suite fp8`: FA3's outlier test (N(0,1), 0.1% of entries from N(0, 10^2)) at B·S = 16K
    tokens, H = 2048 / D, D 64/128/256, S 1K..16K, causal and not: our bf16 kernel, FP8 per tensor
    and FP8 block + Hadamard, timed in one process (FP8 times are the kernel call on quantized
    inputs), RMSE against float64 on sampled rows of the unquantized inputs. `layout`: the inputs'
    memory order (bshd: [B, H, S, D] views of [B, S, H, D] tensors; quantizing keeps the strides)."""
    from .fp8 import attention_fp8, hadamard_qk, quantize_fp8

    dev = torch.device("cuda")
    name = torch.cuda.get_device_name()
    flush = torch.empty(FLUSH_BYTES, dtype=torch.uint8, device=dev)
    records: List[Dict[str, Any]] = []
    log(f"{'name':<24} {'backend':<16} {'ms':>9} {'TF/s':>8} {'x bf16':>7} {'rmse':>9}")
    for d in (64, 128, 256):
        for s in (1024, 2048, 4096, 8192, 16384):
            for causal in (False, True):
                r = dict(name=f"fp8-d{d}-s{s}{'-causal' if causal else ''}", mode="fwd", dtype="bf16", b=16384 // s,
                         h=2048 // d, hkv=2048 // d, sq=s, sk=s, d=d, mask="causal" if causal else "none",
                         layout=layout)
                if only and only not in r["name"]:
                    continue

                def outliers() -> torch.Tensor:
                    if layout == "bshd":
                        x = torch.randn(r["b"], s, r["h"], d, device=dev).transpose(1, 2)
                    else:
                        x = torch.randn(r["b"], r["h"], s, d, device=dev)
                    return torch.where(torch.rand_like(x) < 1e-3, 10 * torch.randn_like(x), x)

                q, k, v = outliers(), outliers(), outliers()
                rows = torch.unique(torch.cat([torch.tensor([0, s - 1]), torch.randint(0, s, (64,))])).to(dev)
                ref = reference_rows(q, k, v, r["mask"], rows)
                qb, kb, vb = q.bfloat16(), k.bfloat16(), v.bfloat16()
                qh, kh = hadamard_qk(q, k, seed=s + d)
                modes = {
                    "flashcore_bf16": (lambda: _flashcore_call(r, qb, kb, vb)),
                    "flashcore_fp8": (lambda: _fp8_call(attention_fp8, causal, *(quantize_fp8(t) for t in (q, k, v)))),
                    "flashcore_fp8_bh": (lambda: _fp8_call(
                        attention_fp8, causal, quantize_fp8(qh, "block"), quantize_fp8(kh, "block"),
                        quantize_fp8(v, "head"))),
                }
                fns = {backend: make() for backend, make in modes.items()}
                outs = {backend: fn()[:, :, rows].double() for backend, fn in fns.items()}
                times = time_rounds(fns, flush, iters, rounds=rounds)
                ms16 = times["flashcore_bf16"]
                for backend, got in outs.items():
                    ms = times[backend]
                    rmse = float(((got - ref) ** 2).mean().sqrt())
                    rec = _record(r, name, backend, ms, float((got - ref).abs().max()), float("nan"), float("nan"),
                                  not torch.isnan(got).any().item(), rmse=rmse, speedup_vs_bf16=ms16 / ms)
                    log(f"{r['name']:<24} {backend:<16} {ms:>9.4f} {rec['tflops']:>8.1f} {ms16 / ms:>7.2f} {rmse:>9.2e}")
                    records.append(rec)
                del q, k, v, qb, kb, vb, qh, kh, fns, outs
                torch.cuda.empty_cache()
    return records


def _fp8_call(attention_fp8, causal, qq, kq, vq):
    (q8, qd), (k8, kd), (v8, vd) = qq, kq, vq
    return lambda: attention_fp8(q8, k8, v8, qd, kd, vd, causal=causal)
