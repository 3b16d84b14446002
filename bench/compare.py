"""Merge flashcore and peer records of one device run; print per-shape ratios to each SDPA backend.

    python bench/compare.py OUT.json flashcore.json peers.json
"""

import json
import sys


def main():
    out, *inputs = sys.argv[1:]
    recs = [r for p in inputs for r in json.load(open(p))]
    json.dump(recs, open(out, "w"), indent=1)
    names = []
    by = {}
    for r in recs:
        if r["name"] not in names:
            names.append(r["name"])
        by[(r["name"], r["backend"])] = r
    peers = ["sdpa_flash", "sdpa_cudnn", "sdpa_efficient"]
    print(f"{'name':<22} {'flashcore':>9} " + " ".join(f"{p:>15}" for p in peers) + "   ratio to best")
    for n in names:
        fc = by.get((n, "flashcore"))
        if not fc:
            continue
        cells, best = [], 0.0
        for p in peers:
            r = by.get((n, p))
            if r:
                best = max(best, r["tflops"])
                cells.append(f"{r['tflops']:>7.1f} ({fc['tflops'] / r['tflops']:.2f}x)")
            else:
                cells.append(f"{'-':>15}")
        ratio = f"{fc['tflops'] / best:.2f}" if best else "-"
        print(f"{n:<22} {fc['tflops']:>9.1f} " + " ".join(f"{c:>15}" for c in cells) + f"   {ratio}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
