#!/usr/bin/env bash
# For the next session (written in session 22, not yet run): the end-of-CTA dQ converter
# (FLASHCORE_SM90_BWD_CONVERT_END=1, kernels/sm90/bwd_convert.cuh run_end: each owned tile copied
# into the free dQ buffer and converted from shared memory while the consumers write dK / dV; in
# causal kernels too) against the default (per-thread loads while the consumers compute, non-causal
# only): A B A B on the backward rows (the bench checks each row's gradients), then the Rust
# backward GPU tests with it on every grid row after the first, the many-rows test, and memcheck /
# racecheck / synccheck on edge rows at lag 1.
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs packed into $OUT/$TAG.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
tag=${TAG:-s23-convert-end}
packed_logs "$tag"
CONFIGS="base:FLASHCORE_SM90_BWD_CONVERT_END=0 end:FLASHCORE_SM90_BWD_CONVERT_END=1" SUITE=bwd ITERS=20 \
  ONLY="${ONLY:-bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k}" scripts/gpu/ab.sh > "$log/ab.txt" 2>&1
sort -s -k3,3 "$log/ab.txt"
pack
[ "${AB_ONLY:-0}" = 1 ] && exit 0
lag1="FLASHCORE_SM90_BWD_CONVERT_END=1 FLASHCORE_SM90_BWD_CONVERT_LAG=1 FLASHCORE_SM90_BWD_ZERO_LAG=1"
env $lag1 timeout 240 .stage/gpu-tests --test-threads 1 backward > "$log/tests-lag1.txt" 2>&1
echo "backward tests, end converter, lag 1: rc=$? $(grep -E '^test result' "$log/tests-lag1.txt")"
grep -A4 panicked "$log/tests-lag1.txt" | head -n 10
FLASHCORE_SM90_BWD_CONVERT_END=1 timeout 100 .stage/gpu-tests --test-threads 1 many_rows > "$log/tests-auto.txt" 2>&1
echo "many-rows test: rc=$? $(grep -E '^test result' "$log/tests-auto.txt")"
pack
for run in "memcheck bwd-sq4097-sk1000-br" "racecheck bwd-sq1000-sk4097-br" "synccheck bwd-sq4097-sk1000-br"; do
  set -- $run
  f="$log/$1-$2.txt"
  env $lag1 timeout 120 compute-sanitizer --tool "$1" --error-exitcode 9 .stage/flashcore validate --full --only "$2" > "$f" 2>&1
  echo "$1 $2 rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$f" | head -n 1) $(grep -E 'passed' "$f" | tail -n 1)"
  pack
done
