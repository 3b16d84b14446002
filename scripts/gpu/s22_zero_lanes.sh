#!/usr/bin/env bash
# Session 22, fourth call: where warps 1-3 of the producer warpgroup convert dQ (non-causal d64 /
# d128), the zeros stored by lanes 1-31 of the producer's warp (F, this build) instead of by warps
# 1-3 ahead of their conversion (E, .stage/flashcore-E, build of the previous commit): A B A B on
# the backward rows; then the Rust backward GPU tests with zeroing and conversion on every grid row
# after the first, and the many-rows test at the planner's lags.
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs in $OUT/$TAG.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
tag=${TAG:-s22-zero-lanes}
packed_logs "$tag"
CONFIGS="E@.stage/flashcore-E: F:" SUITE=bwd ITERS=20 \
  ONLY="${ONLY:-bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k}" scripts/gpu/ab.sh > "$log/ab.txt" 2>&1
sort -s -k3,3 "$log/ab.txt"
pack
lag1="FLASHCORE_SM90_BWD_ZERO_LAG=1 FLASHCORE_SM90_BWD_CONVERT_LAG=1"
env $lag1 timeout 240 .stage/gpu-tests --test-threads 1 backward > "$log/tests-lag1.txt" 2>&1
echo "backward tests, lag 1: rc=$? $(grep -E '^test result' "$log/tests-lag1.txt")"
grep -A4 panicked "$log/tests-lag1.txt" | head -n 10
timeout 100 .stage/gpu-tests --test-threads 1 many_rows > "$log/tests-auto.txt" 2>&1
echo "many-rows test, planner's lags: rc=$? $(grep -E '^test result' "$log/tests-auto.txt")"
pack
