#!/usr/bin/env bash
# Session 20, third call. (1) The FP8 suite's gap to the CLI, condition by condition
# (scripts/gpu/fp8_gap_probe.py: rounds with bf16 or alone; 1 GiB, 2 x L2 or no flush). (2) Do the
# ratios to cuDNN depend on the memory layout? The bench's rows are [B, S, H, D] (bshd) unless they
# say otherwise; issue 5's peer figures do not name one. The d128 rows of the fa suite, the GQA rows
# and the seed row in both layouts, every SDPA backend in the same process.
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage). Logs packed into
# $OUT/s20-layout.tgz after every step.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s20-layout
install_wheel || exit 1
for sd in "16384 256" "16384 128"; do
  timeout 150 python3 scripts/gpu/fp8_gap_probe.py $sd > "$log/s20-fp8-gap-${sd// /-}.txt" 2>&1
  echo "gap probe $sd rc=$?"; cat "$log/s20-fp8-gap-${sd// /-}.txt"
  pack
done
for lay in bshd bhsd; do
  for sel in "fa d128" "gqa -" "seed h96"; do
    set -- $sel
    only=$2; [[ $only == - ]] && only=""
    timeout 200 python3 -m flashcore bench --suite $1 ${only:+--only=$only} --layout $lay \
      --json "$log/$day-$gpu-s20-layout-$lay-python-$1.json" > "$log/s20-layout-$lay-$1.log" 2>&1
    echo "bench $1 $lay rc=$?"
    pack
  done
done
python3 - "$log" <<'PY'
import json, sys, glob
rows = {}
for f in sorted(glob.glob(sys.argv[1] + "/*-s20-layout-*-python-*.json")):
    for r in json.load(open(f)):
        if r["backend"] in ("flashcore", "sdpa_cudnn"):
            rows.setdefault((r["name"], r["layout"]), {})[r["backend"]] = r["tflops"]
for (name, lay), t in sorted(rows.items()):
    if len(t) == 2:
        print(f"{name:<22} {lay}  flashcore {t['flashcore']:6.1f}  cudnn {t['sdpa_cudnn']:6.1f}  ratio {t['flashcore'] / t['sdpa_cudnn']:.3f}")
PY
