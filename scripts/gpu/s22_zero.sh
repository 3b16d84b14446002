#!/usr/bin/env bash
# Session 22: the fp32 dQ accumulator zeroed inside the Hopper backward (FLASHCORE_SM90_BWD_ZERO=1,
# kernels/sm90/bwd_zero.cuh) against the prep kernel zeroing it: A B A B on the backward rows (the
# bench checks each row's gradients too); then the Rust backward GPU tests with the zeroing and the
# conversion forced onto every grid row after the first (FLASHCORE_SM90_BWD_ZERO_LAG=1 and
# FLASHCORE_SM90_BWD_CONVERT_LAG=1, so the small test shapes take both), the many-rows test at the
# planner's lags, and memcheck / racecheck on two edge rows at lag 1 (Sq > Sk bottom-right: query
# blocks no key visits; Sq < Sk).
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs packed into $OUT/$TAG.tgz.
#   AB_ONLY=1: the A/B alone; TESTS_ONLY=1: the rest alone.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
tag=${TAG:-s22-zero}
packed_logs "$tag"
if [ "${TESTS_ONLY:-0}" != 1 ]; then
  CONFIGS="prep:FLASHCORE_SM90_BWD_ZERO=0 kern:FLASHCORE_SM90_BWD_ZERO=1" SUITE=bwd ITERS=20 \
    ONLY="${ONLY:-bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k}" scripts/gpu/ab.sh > "$log/${tag#s22-}-ab.txt" 2>&1
  sort -s -k3,3 "$log/${tag#s22-}-ab.txt"
  pack
fi
[ "${AB_ONLY:-0}" = 1 ] && exit 0
lag1="FLASHCORE_SM90_BWD_ZERO_LAG=1 FLASHCORE_SM90_BWD_CONVERT_LAG=1"
env $lag1 timeout 240 .stage/gpu-tests --test-threads 1 backward > "$log/tests-lag1.txt" 2>&1
echo "backward tests, lag 1: rc=$? $(grep -E '^test result' "$log/tests-lag1.txt")"
grep -A4 panicked "$log/tests-lag1.txt" | head -n 10
pack
timeout 100 .stage/gpu-tests --test-threads 1 many_rows > "$log/tests-auto.txt" 2>&1
echo "many-rows test, planner's lags: rc=$? $(grep -E '^test result' "$log/tests-auto.txt")"
pack
for tool in memcheck racecheck; do
  for row in bwd-sq4097-sk1000-br bwd-sq1000-sk4097-br; do
    f="$log/$tool-$row.txt"
    env $lag1 timeout 120 compute-sanitizer --tool "$tool" --error-exitcode 9 .stage/flashcore validate --full --only "$row" > "$f" 2>&1
    echo "$tool $row rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$f" | head -n 1) $(grep -E 'passed' "$f" | tail -n 1)"
  done
  pack
done
