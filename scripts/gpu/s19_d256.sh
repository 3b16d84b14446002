#!/usr/bin/env bash
# Session 19: FP8 d256 without a causal mask now reads P from shared memory and runs the overlapped
# loop with ping-pong by default (plan/variant.rs Variant::fp8_p_smem, kernels/sm90/config.cuh).
# The FP8 GPU test and `flashcore fp8` validation on the new default, then A B A B against the old
# path (FLASHCORE_SM90_P_SMEM=0, whose SASS is the previous commit's) from 1K to 16K keys, causal
# rows as the control (their kernel did not change), then the Python FP8 suite beside bf16.
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage). Logs packed into
# $OUT/s19-d256.tgz after every step.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_BENCH_LSE=0 FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s19-d256
fp8_checks s19-d256
pack
CONFIGS="old:FLASHCORE_SM90_P_SMEM=0 new:" SHAPES="s1024 d256|s2048 d256|s4096 d256|s8192 d256|s16384 d256" \
  scripts/gpu/fp8_ab.sh > "$log/s19-d256-ab.txt" 2>&1
grep -E " fp8-tensor " "$log/s19-d256-ab.txt" | sort -s -k3,6 | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9,$10}'
pack
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" || exit 1
unset FLASHCORE_BENCH_LSE
timeout 150 python3 -m flashcore bench --suite fp8 --json "$log/$day-$gpu-s19-d256-python-fp8.json" > "$log/s19-d256-python-fp8.log" 2>&1
echo "python fp8 rc=$?"
grep -E "d256|d128" "$log/s19-d256-python-fp8.log" | head -30
pack
