#!/usr/bin/env bash
# Session 30: where the Python bench's extra ~1.2% on the short backward rows goes
# (scripts/gpu/s30_pygap.py) on D128 S1K and D64 S1K, then the CLI's timing of the same rows in the
# same call. Logs packed into $OUT/s30-pygap.tgz after each step.
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s30-pygap
install_wheel || exit 1
for row in bwd-d128-s1k bwd-d64-s1k; do
  ROW=$row timeout 150 python3 scripts/gpu/s30_pygap.py "$log/$day-$gpu-s30-pygap-$row.json" 2>&1 | tee "$log/$day-$gpu-s30-pygap-$row.log"
  pack
done
for row in bwd-d128-s1k bwd-d64-s1k; do
  .stage/flashcore bench --suite all --only $row --iters 40 2>&1 | tee -a "$log/$day-$gpu-s30-pygap-cli.log"
done
pack
