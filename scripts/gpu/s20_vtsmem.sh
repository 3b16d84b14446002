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
FLASHCORE_SM90_VT_SMEM=1 fp8_checks s20-vtsmem
pack
install_wheel || exit 1
FLASHCORE_SM90_VT_SMEM=1 timeout 200 python3 -m pytest -p no:cacheprovider -q python/tests -m gpu -k "fp8" -ra > "$log/s20-vtsmem-python-tests.txt" 2>&1
echo "pytest fp8 rc=$?"; tail -n 3 "$log/s20-vtsmem-python-tests.txt"
pack
FLASHCORE_SM90_VT_SMEM=1 fp8_sanitize s20-vtsmem "s77 d64" "s1000 d128"
pack
CONFIGS="pass:FLASHCORE_SM90_VT_SMEM=0 smem:FLASHCORE_SM90_VT_SMEM=1" \
  SHAPES=${SHAPES:-"s1024 d128|s4096 d128|s16384 d128|s4096 d64|s1024 d64"} scripts/gpu/fp8_ab.sh > "$log/s20-vtsmem-fp8-ab.txt" 2>&1
grep -E " fp8-tensor " "$log/s20-vtsmem-fp8-ab.txt" | sort -s -k3,6 | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9,$10}'
pack
