#!/usr/bin/env bash
# Session 20: the in-kernel FP8 V transpose after its first run (short rows +13-29%, D128 S16K
# -8%). With the transposer warps releasing the Q slot themselves (the racecheck report) and the
# block-quantized q descale read clamped to the last block (the memcheck report, older than the
# transposer): memcheck and racecheck again, both paths; the FP8 GPU test; then where the long
# rows' 8% goes, A B A B: the pass, the in-kernel transpose, the same with its waits and arrivals
# but no data movement (FLASHCORE_SM90_PROBE=16), and with one warp moving all the data (=32).
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs packed into $OUT/s20-vtprobe.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_BENCH_LSE=0 FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s20-vtprobe
for vt in 1 0; do
  for tool in memcheck racecheck; do
    for o in "s77 d64" "s1000 d128"; do
      FLASHCORE_SM90_VT_SMEM=$vt timeout 200 compute-sanitizer --tool $tool --error-exitcode 9 .stage/flashcore fp8 --only "$o" \
        > "$log/s20-vtprobe-vt$vt-$tool-${o// /-}.txt" 2>&1
      echo "vt=$vt $tool $o rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log/s20-vtprobe-vt$vt-$tool-${o// /-}.txt" | head -n 1)"
    done
  done
  pack
done
FLASHCORE_SM90_VT_SMEM=1 timeout 150 .stage/gpu-tests --test-threads 1 fp8 > "$log/s20-vtprobe-tests.txt" 2>&1
echo "fp8 test rc=$? $(grep -E '^test result' "$log/s20-vtprobe-tests.txt")"
pack
CONFIGS="pass:FLASHCORE_SM90_VT_SMEM=0 smem:FLASHCORE_SM90_VT_SMEM=1 nowork:FLASHCORE_SM90_VT_SMEM=1,FLASHCORE_SM90_PROBE=16 onewarp:FLASHCORE_SM90_VT_SMEM=1,FLASHCORE_SM90_PROBE=32" \
  SHAPES="s16384 d128|s4096 d128|s1024 d128" scripts/gpu/fp8_ab.sh > "$log/s20-vtprobe-fp8-ab.txt" 2>&1
grep -E " fp8-tensor " "$log/s20-vtprobe-fp8-ab.txt" | grep -v causal | sort -s -k3,6 | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9}'
pack
