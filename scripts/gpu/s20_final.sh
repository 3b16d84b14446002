#!/usr/bin/env bash
# Session 20's closing device call on the tree with the in-kernel FP8 V transpose chosen by the
# planner (plan/variant.rs Variant::with_vt_smem: up to 2048 query rows per KV head x group, halved
# when causal). The 16-bit forward SASS is byte-identical to the session start (96 sm_90a variants
# compared here), the backward untouched: the checks are the FP8 ones. `flashcore fp8` validation
# (default, and with the pass forced), compute-sanitizer on three rows, the FP8 GPU and Python
# tests, the threshold's neighbours A B A B (default / forced on / forced off), then the Python FP8
# suite (bf16 in the same process).
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage). Logs in $OUT/s20-final.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s20-final
{
  echo "== flashcore fp8 (default)"; timeout 150 .stage/flashcore fp8 2>&1 | tail -45
  echo "== flashcore fp8 (FLASHCORE_SM90_VT_SMEM=0)"; FLASHCORE_SM90_VT_SMEM=0 timeout 150 .stage/flashcore fp8 2>&1 | tail -45
  echo "== FP8 GPU test"; timeout 150 .stage/gpu-tests --test-threads 1 fp8 2>&1 | grep -E -A12 "^test |test result|panicked" | head -40
} > "$log/s20-final-tests.txt" 2>&1
grep -E "test result|FAIL|panicked| no$|within" "$log/s20-final-tests.txt" | head -20
pack
fp8_sanitize s20-final "s77 d64" "s1000 d128" "s4096 d128 causal"
pack
install_wheel || exit 1
timeout 200 python3 -m pytest -p no:cacheprovider -q python/tests -m gpu -k "fp8" -ra > "$log/s20-final-python-tests.txt" 2>&1
echo "pytest fp8 rc=$?"; tail -n 1 "$log/s20-final-python-tests.txt"
pack
FLASHCORE_BENCH_LSE=0 CONFIGS="default: on:FLASHCORE_SM90_VT_SMEM=1 off:FLASHCORE_SM90_VT_SMEM=0" \
  SHAPES="s2048 d128|s8192 d128|s2048 d64|s8192 d64" scripts/gpu/fp8_ab.sh > "$log/s20-final-fp8-threshold-ab.txt" 2>&1
grep -E " fp8-tensor " "$log/s20-final-fp8-threshold-ab.txt" | sort -s -k3,7 | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9,$10}'
pack
timeout 220 python3 -m flashcore bench --suite fp8 --json "$log/$day-$gpu-s20-final-python-fp8.json" > "$log/s20-final-python-fp8.log" 2>&1
echo "python fp8 suite rc=$?"
grep -E "flashcore_fp8 |flashcore_bf16" "$log/s20-final-python-fp8.log" | grep -E "d128|d256" | head -40
pack
