"""Merge flashcore and peer records of one device run; print per-shape ratios to each SDPA backend.

    python bench/compare.py OUT.json flashcore.json peers.json

Records are matched by (name, mode, backend): the forward rows (mode "fwd", records without a mode
included) and the backward rows (mode "bwd", FLOPs = 2.5 x forward) print as separate tables.
"""

import json
import sys

PEERS = ["sdpa_flash", "sdpa_cudnn", "sdpa_efficient"]
TITLES = {"fwd": "forward", "bwd": "backward (FLOPs = 2.5 x forward)"}


def table(recs, mode):
    """The ratio table of one mode, as lines (empty when no flashcore record has that mode)."""
    names, by = [], {}
    for r in recs:
        if r.get("mode", "fwd") != mode:
            continue
        if r["name"] not in names:
            names.append(r["name"])
        by[(r["name"], r["backend"])] = r
    lines = [f"{'name':<24} {'flashcore':>9} " + " ".join(f"{p:>15}" for p in PEERS) + "   ratio to best"]
    rows = 0
    for n in names:
        fc = by.get((n, "flashcore"))
        if not fc:
            continue
        rows += 1
        cells, best = [], 0.0
        for p in PEERS:
            r = by.get((n, p))
            if r and r["tflops"] == r["tflops"] and r["tflops"] > 0:
                best = max(best, r["tflops"])
                cells.append(f"{r['tflops']:>7.1f} ({fc['tflops'] / r['tflops']:.2f}x)")
            else:
                cells.append(f"{'-':>15}")
        ratio = f"{fc['tflops'] / best:.2f}" if best else "-"
        flag = "" if fc.get("passed", True) else "   FAIL"
        lines.append(f"{n:<24} {fc['tflops']:>9.1f} " + " ".join(f"{c:>15}" for c in cells) + f"   {ratio}{flag}")
    return lines if rows else []


def main():
    out, *inputs = sys.argv[1:]
    recs = [r for p in inputs for r in json.load(open(p))]
    json.dump(recs, open(out, "w"), indent=1)
    modes = []
    for r in recs:
        m = r.get("mode", "fwd")
        if m not in modes:
            modes.append(m)
    for m in modes:
        lines = table(recs, m)
        if lines:
            print(f"\n{TITLES.get(m, m)}")
            print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
