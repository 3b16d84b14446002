"""Summarise an Nsight Compute report's per-instruction stall samples (run where ncu is installed).

    ncu --set full --import-source no -k regex:fc_fwd -s 3 -c 1 -o rep <cmd>
    python3 scripts/gpu/ncu_stalls.py rep.ncu-rep [top] [all.tsv]

Prints the top SASS instructions by sampled warp stalls with their main stall reasons, and the
totals per reason over the whole kernel, so a perf note can say which instruction waits on what.
With all.tsv, every instruction in program order (address, samples, the main reasons, SASS), to
split the samples between a kernel's prologue, main loop and epilogue.
"""

import csv
import io
import subprocess
import sys


def main():
    rep = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    raw = subprocess.run(
        ["ncu", "-i", rep, "--page", "source", "--csv", "--print-source", "sass"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = raw.splitlines()
    # Skip any preamble before the CSV header (the header row has the "Source" column).
    start = next(i for i, l in enumerate(lines) if '"Source"' in l or l.startswith("# Address") or "Address" in l)
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[start:]))))
    if not rows:
        print("no rows")
        return
    cols = list(rows[0].keys())
    total_col = next((c for c in cols if "Warp Stall Sampling (All" in c), None)
    reason_cols = [c for c in cols if c.startswith("stall_") or ("Stall" in c and c != total_col and "Sampling" not in c)]
    print("columns:", ", ".join(cols[:12]), "...", len(cols), "in all")

    def num(v):
        try:
            return float(str(v).replace(",", ""))
        except ValueError:
            return 0.0

    tot = sum(num(r.get(total_col, 0)) for r in rows) or 1.0
    print(f"total stall samples: {tot:.0f}")
    sums = {c: sum(num(r.get(c, 0)) for r in rows) for c in reason_cols}
    for c, v in sorted(sums.items(), key=lambda kv: -kv[1])[:14]:
        print(f"  {c:50s} {v:10.0f} {100 * v / tot:5.1f}%")
    src = next((c for c in cols if c == "Source"), cols[1])
    ranked = sorted(rows, key=lambda r: -num(r.get(total_col, 0)))[:top]
    for r in ranked:
        v = num(r.get(total_col, 0))
        reasons = sorted(((num(r.get(c, 0)), c) for c in reason_cols), reverse=True)[:3]
        rs = " ".join(f"{c.replace('stall_', '')}={n:.0f}" for n, c in reasons if n > 0)
        print(f"{100 * v / tot:5.1f}% {r.get('Address', ''):>6} {r.get(src, '')[:70]:70s} {rs}")
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:
            for r in rows:
                reasons = sorted(((num(r.get(c, 0)), c) for c in reason_cols), reverse=True)[:4]
                rs = " ".join(f"{c.replace('stall_', '').replace(' ', '_')}={n:.0f}" for n, c in reasons if n > 0)
                f.write(f"{r.get('Address', '')}\t{num(r.get(total_col, 0)):.0f}\t{rs}\t{r.get(src, '')}\n")


if __name__ == "__main__":
    main()
