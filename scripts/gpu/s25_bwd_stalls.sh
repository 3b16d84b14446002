#!/usr/bin/env bash
# For the next session (written in session 24, not yet run): where the Hopper backward's main
# kernel waits on the H200, the step before any more backward code (bench/NOTES.md session 24,
# "Next" a). One launch each of fc_bwd_sm90 under Nsight Compute (`--set full`, clocks left alone)
# for D128 S1K and S4K (the 80-row dQᵀ tile) and D64 S1K (128 rows), summarised per instruction by
# scripts/gpu/ncu_stalls.py (top instructions and totals per stall reason; the full table in
# program order for splitting prologue / loop / epilogue by hand). About 2 minutes.
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs packed into $OUT/s25-bwd-stalls.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s25-bwd-stalls
for row in ${ROWS:-bwd-d128-s1k bwd-d128-s4k bwd-d64-s1k}; do
  timeout 240 ncu --set full --import-source no --clock-control none -k regex:fc_bwd_sm90 -s 2 -c 1 -o "$log/$row" \
    .stage/flashcore bench --suite bwd --only "$row" --iters 2 > "$log/ncu-$row.log" 2>&1
  echo "ncu $row rc=$?"
  python3 scripts/gpu/ncu_stalls.py "$log/$row.ncu-rep" 60 "$log/$row-all.tsv" > "$log/stalls-$row.txt" 2>&1
  head -n 40 "$log/stalls-$row.txt"
  rm -f "$log/$row.ncu-rep"
  pack
done
