#!/usr/bin/env bash
# Session 20: racecheck again after the stop word is read by lane 0 only (the second version's
# 100+ reports were that word), and where the in-kernel transpose's ~8% of main-kernel time goes
# (the consumers' main loops are the pass's SASS; the first version's no-data-movement probe lost
# the same): Nsight Compute pipes, issue and stall totals of the FP8 D128 S4K kernel, the pass
# against the in-kernel transpose (scripts/gpu/ncu_pipes.sh).
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage). Logs in $OUT/s20-vt3.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s20-vt3
install_wheel || exit 1
FLASHCORE_SM90_VT_SMEM=1 TOOLS=racecheck fp8_sanitize s20-vt3 "s77 d64" "s1000 d128"
pack
for vt in 0 1; do
  echo "=== FLASHCORE_SM90_VT_SMEM=$vt"
  FLASHCORE_SM90_VT_SMEM=$vt OUT=$log/pipes-vt$vt MODES=fp8 SHAPE="4096 128" bash scripts/gpu/ncu_pipes.sh 2>&1 | grep -E "time_duration|pipe_(tensor_op_gmma|xu|alu|fma|lsu|uniform).*active.avg.pct|issue_active|warps_issue_stalled_[a-z_]+ " | grep -v elapsed
  pack
done
