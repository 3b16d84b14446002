"""A session's device logs (bench/results/*-sNN-*.txt; session 14 by default) as the results
schema's JSON records (bench/NOTES.md: device, backend, mode, dtype, B, H, Hkv, Sq, Sk, D, causal,
ms, tflops, max_abs_err, rel_err), one .json beside each log. Derived from the logs only: ms from
TF/s and the row's FLOPs where the log has no ms; errors are null where the run did not record them
(the A/B lines say only that the row passed its bar; the power probe checks nothing). Extra fields:
config, pass, and for the power probe watts and sm_mhz. `validate` logs (*-validate.txt) give ms,
TF/s and the max / relative L2 errors per row.

    python3 scripts/gpu/s14_to_json.py [s15 [2026-11-28]]

The device is the H100 unless FLASHCORE_RESULTS_DEVICE names another (e.g. "NVIDIA H200"); the
files' prefix is the date and that name without "NVIDIA", spaces as dashes.
"""

import json
import os
import pathlib
import re
import sys
import tomllib

DEVICE = os.environ.get("FLASHCORE_RESULTS_DEVICE", "NVIDIA H100 80GB HBM3")
ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
DAY = sys.argv[2] if len(sys.argv) > 2 else "2026-11-27"
PREFIX = f"{DAY}-{DEVICE.removeprefix('NVIDIA ').replace(' ', '-')}-{sys.argv[1] if len(sys.argv) > 1 else 's14'}-"


def load_rows():
    """shapes.toml's rows with the defaults python/flashcore/_bench.py load_shapes fills in."""
    doc = tomllib.loads((ROOT / "python" / "flashcore" / "shapes.toml").read_text())
    rows = {}
    for mode, section in (("fwd", "shapes"), ("bwd", "backward")):
        for r in doc.get(section, []):
            r = dict(r, mode=mode)
            r.setdefault("hkv", r["h"])
            r.setdefault("sk", r["sq"])
            rows[r["name"]] = r
    return rows


def flops(r):
    """_bench.flops: 4·B·H·Sq·Sk·D, halved when causal, 2.5x for the backward."""
    f = 4.0 * r["b"] * r["h"] * r["sq"] * r["sk"] * r["d"]
    f = f / 2 if r["mask"] != "none" else f
    return 2.5 * f if r["mode"] == "bwd" else f


ROWS = load_rows()


def record(r, backend, tflops, ms=None, **extra):
    if ms is None:
        ms = flops(r) / (tflops * 1e12) * 1e3
    rec = dict(device=DEVICE, backend=backend, mode=r["mode"], dtype=r["dtype"], B=r["b"], H=r["h"],
               Hkv=r["hkv"], Sq=r["sq"], Sk=r["sk"], D=r["d"], causal=r["mask"] != "none", ms=ms, tflops=tflops,
               max_abs_err=None, rel_err=None, name=r["name"])
    rec.update(extra)
    return rec


def ab(path):
    # "label  pN row  TF TF/s pass"
    out = []
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) >= 6 and f[4] == "TF/s" and f[2] in ROWS:
            out.append(record(ROWS[f[2]], "flashcore", float(f[3]), config=f[0], run=f[1], passed=f[5] == "pass"))
    return out


def power(path):
    # "row rep backend calls TF/s W MHz memMHz C reasons"
    out = []
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) >= 10 and f[0] in ROWS and f[2] in ("flashcore", "cudnn"):
            be = "flashcore" if f[2] == "flashcore" else "sdpa_cudnn"
            out.append(record(ROWS[f[0]], be, float(f[4]), run=int(f[1]), calls=int(f[3]), watts=float(f[5]),
                              sm_mhz=float(f[6]), sustained=True))
    return out


FP8 = re.compile(r"^(\S+) (p\d) b(\d+) h(\d+)/(\d+) s(\d+) d(\d+)( causal)?\s+(\S+)\s+([\d.]+)\s+([\d.]+)\s+\S+\s+(\S+)")


def fp8(path):
    out = []
    for line in path.read_text().splitlines():
        m = FP8.match(line)
        if not m:
            continue
        cfg, run, b, h, hkv, s, d, causal, mode, ms, tf, rmse = m.groups()
        out.append(dict(device=DEVICE, backend="flashcore", mode="fwd", dtype="e4m3" if mode.startswith("fp8") else mode,
                        quant=mode, B=int(b), H=int(h), Hkv=int(hkv), Sq=int(s), Sk=int(s), D=int(d),
                        causal=bool(causal), ms=float(ms), tflops=float(tf), max_abs_err=None, rel_err=None,
                        rmse=float(rmse), config=cfg, run=run))
    return out


def validate(path):
    # `flashcore validate` and `flashcore bench` (the CLI's table):
    # "name  shape...  max_err bar rel_l2 ok groups ms TF/s us/head %peak variant", or the same
    # after a configuration label (a tile forced with FLASHCORE_SM90_TILE, session 26)
    out = []
    for line in path.read_text().splitlines():
        f = line.split()
        config = {}
        if len(f) > 1 and f[0] not in ROWS and f[1] in ROWS:
            config, f = {"config": f[0]}, f[1:]
        if len(f) < 12 or f[0] not in ROWS or f[-7] not in ("pass", "FAIL"):
            continue
        max_err, _bar, rel, ok, _groups, ms, tf = f[-10:-3]
        out.append(record(ROWS[f[0]], "flashcore", float(tf), ms=float(ms), max_abs_err=float(max_err),
                          rel_err=float(rel), passed=ok == "pass", variant=f[-1], **config))
    return out


PROBE = re.compile(r"^  (pass \d) flush (\S+)\s+(\S+)\s+([\d.]+) ms\s+([\d.]+) TF/s")
KERNEL = re.compile(r"^  kernel \((\S+)\s*\)\s+([\d.]+) us x\d+\s+(\S+)")


def probe(path):
    # scripts/gpu/s16_row_probe.py: "=== row", then "  pass N flush F backend ms TF/s" (the bench's
    # event timing) and "  kernel (backend) us xN name" (the profiler's device time per call).
    out, r = [], None
    for line in path.read_text().splitlines():
        if line.startswith("=== "):
            r = ROWS.get(line.split()[1])
            continue
        if r is None:
            continue
        m = PROBE.match(line)
        if m:
            run, fl, be, ms, tf = m.groups()
            out.append(record(r, be, float(tf), ms=float(ms), run=run, flush=fl))
            continue
        m = KERNEL.match(line)
        if m:
            be, us, kname = m.groups()
            ms = float(us) / 1e3
            out.append(record(r, be, flops(r) / (ms * 1e-3) / 1e12, ms=ms, timing="profiler kernel time", kernel=kname))
    return out


def lse(path):
    # scripts/gpu/lse_probe.py: "name  config TF/s  config TF/s ...", configs no_lse / lse /
    # train_fwd (flashcore) and cudnn (SDPA's cuDNN backend), one process.
    out = []
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) < 3 or f[0] not in ROWS or len(f) % 2 == 0:
            continue
        for cfg, tf in zip(f[1::2], f[2::2]):
            out.append(record(ROWS[f[0]], "sdpa_cudnn" if cfg == "cudnn" else "flashcore", float(tf), config=cfg))
    return out


SPLIT = re.compile(r"^  (flashcore|sdpa_cudnn)\s+([\d.]+) us (?:x\d+\s+([\d.]+)%\s+(\S+)|total)")


def split(path):
    # scripts/gpu/bwd_split_probe.py: "=== row", then per backend "  backend us xN pct% kernel" (the
    # profiler's device time per call of each kernel) and "  backend us total".
    out, r = [], None
    for line in path.read_text().splitlines():
        if line.startswith("=== "):
            r = ROWS.get(line.split()[1])
            continue
        m = SPLIT.match(line) if r is not None else None
        if m:
            be, us, pct, kname = m.groups()
            ms = float(us) / 1e3
            extra = dict(kernel=kname, share=float(pct) / 100) if kname else dict(kernel="all kernels of the call")
            out.append(record(r, be, flops(r) / (ms * 1e-3) / 1e12, ms=ms, timing="profiler kernel time", **extra))
    return out


def main():
    for path in sorted(RESULTS.glob(PREFIX + "*.txt")):
        tag = path.name[len(PREFIX):-4]
        if tag.startswith("power"):
            recs = power(path)
        elif tag.startswith("fp8") and tag.endswith("ab"):
            recs = fp8(path)
        elif tag.endswith("ab"):
            recs = ab(path)
        elif tag == "row-probe":
            recs = probe(path)
        elif tag.endswith("split-probe"):
            recs = split(path)
        elif tag.endswith(("validate", "bench")):
            recs = validate(path)
        elif tag == "lse-probe":
            recs = lse(path)
        else:
            continue
        if recs:
            path.with_suffix(".json").write_text(json.dumps(recs, indent=1) + "\n")
            print(f"{path.with_suffix('.json').name}: {len(recs)} records")


if __name__ == "__main__":
    main()
