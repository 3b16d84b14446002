#!/usr/bin/env bash
# Session 20: the FP8 forward's V transposed in shared memory (FLASHCORE_SM90_VT_SMEM=1,
# kernels/sm90/transpose.cuh) instead of by the fp8_vt.cu pass (34 us a call at B·S = 16K tokens,
# 4-12% of the D128 FP8 call; this session's fourth call). Correctness first (FP8 GPU test,
# `flashcore fp8` validation, the Python FP8 tests, compute-sanitizer on two small rows), then
# A B A B of FP8 per tensor (scripts/gpu/fp8_ab.sh) from 1K to 16K keys, d64 / d128.
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage). Logs packed into
# $OUT/s20-vtsmem.tgz after every step.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_BENCH_LSE=0 FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s20-vtsmem
{
  echo "== FP8 GPU test"
  FLASHCORE_SM90_VT_SMEM=1 timeout 150 .stage/gpu-tests --test-threads 1 fp8 2>&1 | grep -E -A12 "^test |test result|panicked" | head -40
  echo "== flashcore fp8"
  FLASHCORE_SM90_VT_SMEM=1 timeout 150 .stage/flashcore fp8 2>&1 | tail -45
} > "$log/s20-vtsmem-tests.txt" 2>&1
grep -E "test result|FAIL|panicked| no$|rows" "$log/s20-vtsmem-tests.txt" | head -20
pack
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" || exit 1
FLASHCORE_SM90_VT_SMEM=1 timeout 200 python3 -m pytest -p no:cacheprovider -q python/tests -m gpu -k "fp8" -ra > "$log/s20-vtsmem-python-tests.txt" 2>&1
echo "pytest fp8 rc=$?"; tail -n 3 "$log/s20-vtsmem-python-tests.txt"
pack
for tool in memcheck racecheck synccheck; do
  for o in "s77 d64" "s1000 d128"; do
    FLASHCORE_SM90_VT_SMEM=1 timeout 200 compute-sanitizer --tool $tool --error-exitcode 9 .stage/flashcore fp8 --only "$o" \
      > "$log/s20-vtsmem-$tool-${o// /-}.txt" 2>&1
    echo "$tool $o rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log/s20-vtsmem-$tool-${o// /-}.txt" | head -n 1)"
  done
done
pack
CONFIGS="pass:FLASHCORE_SM90_VT_SMEM=0 smem:FLASHCORE_SM90_VT_SMEM=1" \
  SHAPES=${SHAPES:-"s1024 d128|s4096 d128|s16384 d128|s4096 d64|s1024 d64"} scripts/gpu/fp8_ab.sh > "$log/s20-vtsmem-fp8-ab.txt" 2>&1
grep -E " fp8-tensor " "$log/s20-vtsmem-fp8-ab.txt" | sort -s -k3,6 | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9,$10}'
pack
