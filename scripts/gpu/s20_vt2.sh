#!/usr/bin/env bash
# Session 20: the in-kernel FP8 V transpose, second version (FLASHCORE_SM90_VT_SMEM=1). The
# transposer warps no longer follow the published tiles (the producer ends them with a stop word
# on the staging phase after the last block), and their group loop is not unrolled: with both, the
# consumers' main loops are the pass's again (the first version moved uniform values into the
# loop and spilled two tile counters; its "no data movement" probe ran as slow as itself).
# Correctness (FP8 GPU test, `flashcore fp8` validation, Python FP8 tests, memcheck / racecheck /
# synccheck), A B A B against the pass, then the Python FP8 suite with the transpose in the kernel.
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage). Logs packed into
# $OUT/s20-vt2.tgz after every step.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_BENCH_LSE=0 FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s20-vt2
FLASHCORE_SM90_VT_SMEM=1 fp8_checks s20-vt2
pack
FLASHCORE_SM90_VT_SMEM=1 fp8_sanitize s20-vt2 "s77 d64" "s1000 d128"
pack
CONFIGS="pass:FLASHCORE_SM90_VT_SMEM=0 smem:FLASHCORE_SM90_VT_SMEM=1" \
  SHAPES="s1024 d128|s2048 d128|s4096 d128|s16384 d128|s1024 d64|s4096 d64" scripts/gpu/fp8_ab.sh > "$log/s20-vt2-fp8-ab.txt" 2>&1
grep -E " fp8-tensor " "$log/s20-vt2-fp8-ab.txt" | sort -s -k3,6 | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9}'
pack
install_wheel || exit 1
FLASHCORE_SM90_VT_SMEM=1 timeout 200 python3 -m pytest -p no:cacheprovider -q python/tests -m gpu -k "fp8" -ra > "$log/s20-vt2-python-tests.txt" 2>&1
echo "pytest fp8 rc=$?"; tail -n 2 "$log/s20-vt2-python-tests.txt"
pack
unset FLASHCORE_BENCH_LSE
FLASHCORE_SM90_VT_SMEM=1 timeout 200 python3 -m flashcore bench --suite fp8 --json "$log/$day-$gpu-s20-vt2-python-fp8.json" > "$log/s20-vt2-python-fp8.log" 2>&1
echo "python fp8 suite rc=$?"
grep -E "flashcore_fp8 " "$log/s20-vt2-python-fp8.log" | head -30
pack
