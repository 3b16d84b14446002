#!/usr/bin/env bash
# Session 21: dQ converted inside the Hopper backward (FLASHCORE_SM90_BWD_CONVERT=1,
# kernels/sm90/bwd_convert.cuh; this first run's converter loaded one row a turn, without the
# prefetch of s21_convert2.sh, and was built into causal kernels too) against the post kernel: A B A B on the backward rows (the bench
# checks each row's gradients too), then the backward GPU tests with the conversion forced onto
# every grid row after the first (FLASHCORE_SM90_BWD_CONVERT_LAG=1, so the small test shapes
# convert), the many-rows test at the planner's lag, and memcheck / racecheck / synccheck on two
# edge rows (bottom-right with Sq > Sk: query blocks no key visits; causal sections) at lag 1.
# The second try (an L1 prefetch four turns ahead, waits only in CTAs that own a unit with data)
# ran the A/B alone: `AB_ONLY=1 ONLY="bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k" TAG=s21-convert2`.
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs packed into $OUT/$TAG.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
tag=${TAG:-s21-convert}
packed_logs "$tag"
CONFIGS="base:FLASHCORE_SM90_BWD_CONVERT=0 conv:FLASHCORE_SM90_BWD_CONVERT=1" SUITE=bwd ITERS=20 \
  ONLY="${ONLY:-bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k bwd-d64-s16k}" scripts/gpu/ab.sh > "$log/${tag#s21-}-ab.txt" 2>&1
sort -s -k3,3 "$log/${tag#s21-}-ab.txt"
pack
[ "${AB_ONLY:-0}" = 1 ] && exit 0
conv="FLASHCORE_SM90_BWD_CONVERT=1 FLASHCORE_SM90_BWD_CONVERT_LAG=1"
env $conv timeout 240 .stage/gpu-tests --test-threads 1 backward > "$log/tests-lag1.txt" 2>&1
echo "backward tests, lag 1: rc=$? $(grep -E '^test result' "$log/tests-lag1.txt")"
grep -A4 panicked "$log/tests-lag1.txt" | head -n 10
pack
FLASHCORE_SM90_BWD_CONVERT=1 timeout 100 .stage/gpu-tests --test-threads 1 many_rows > "$log/tests-auto.txt" 2>&1
echo "many-rows test, planner's lag: rc=$? $(grep -E '^test result' "$log/tests-auto.txt")"
pack
for tool in memcheck racecheck synccheck; do
  for row in bwd-sq4097-sk1000-br bwd-sq1000-sk4097-br; do
    f="$log/$tool-$row.txt"
    env $conv timeout 120 compute-sanitizer --tool "$tool" --error-exitcode 9 .stage/flashcore validate --full --only "$row" > "$f" 2>&1
    echo "$tool $row rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$f" | head -n 1) $(grep -E 'passed' "$f" | tail -n 1)"
  done
  pack
done
