#!/usr/bin/env bash
# For the next session (written in sessions 22-23, not yet run): the two shared-memory dQ
# converters against the default (per-thread loads while the consumers compute, non-causal only):
#   end    FLASHCORE_SM90_BWD_CONVERT_END=1: each owned tile bulk-copied into the free dQ buffer
#          and converted at the CTA's end while the consumers write dK / dV (d 64 and d 128,
#          causal kernels too; kernels/sm90/bwd_convert.cuh run_end);
#   staged FLASHCORE_SM90_BWD_CONVERT_STAGED=1 (with END=1, so d 128 takes the end converter):
#          at d 64, while the consumers compute, from a ring of four 16-row staging buffers that
#          bulk copies keep full (run_staged; causal too);
#   one    staged + FLASHCORE_SM90_BWD_DQ_BUFS=1: d 128's 64-row (causal) tile keeps one dQ buffer
#          instead of two, which makes room for an 8-row ring, so it converts staged too.
# A B C D A B C D on the backward rows (the bench checks each row's gradients; CHECKS_ONLY=1 skips
# it), then (AB_ONLY=1 stops before) the Rust backward GPU tests with all three on every grid row
# after the first, the many-rows test, and memcheck / racecheck / synccheck on edge rows (d 64
# fp16 and d 128 bf16, both causal) at lag 1. The A/B takes ~6 min: run the two halves as two calls.
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs packed into $OUT/$TAG.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
tag=${TAG:-s23-convert-end}
packed_logs "$tag"
both="FLASHCORE_SM90_BWD_CONVERT_END=1,FLASHCORE_SM90_BWD_CONVERT_STAGED=1"
all3="$both,FLASHCORE_SM90_BWD_DQ_BUFS=1"
if [ "${CHECKS_ONLY:-0}" != 1 ]; then
  CONFIGS="base: end:FLASHCORE_SM90_BWD_CONVERT_END=1 staged:$both one:$all3" SUITE=bwd ITERS=20 \
    ONLY="${ONLY:-bwd-d128-s1k bwd-d64-s1k bwd-d64-s4k bwd-d128-s4k}" scripts/gpu/ab.sh > "$log/ab.txt" 2>&1
  sort -s -k3,3 "$log/ab.txt"
  pack
fi
[ "${AB_ONLY:-0}" = 1 ] && exit 0
lag1="${all3//,/ } FLASHCORE_SM90_BWD_CONVERT_LAG=1 FLASHCORE_SM90_BWD_ZERO_LAG=1"
env $lag1 timeout 240 .stage/gpu-tests --test-threads 1 backward > "$log/tests-lag1.txt" 2>&1
echo "backward tests, end + staged converters (one dQ buffer), lag 1: rc=$? $(grep -E '^test result' "$log/tests-lag1.txt")"
grep -A4 panicked "$log/tests-lag1.txt" | head -n 10
env ${all3//,/ } timeout 100 .stage/gpu-tests --test-threads 1 many_rows > "$log/tests-auto.txt" 2>&1
echo "many-rows test: rc=$? $(grep -E '^test result' "$log/tests-auto.txt")"
pack
for run in "memcheck bwd-sq4097-sk1000-br" "racecheck bwd-sq4097-sk1000-br" "synccheck bwd-sq4097-sk1000-br" \
  "memcheck bwd-sq1000-sk4097-br" "racecheck bwd-sq1000-sk4097-br"; do
  set -- $run
  f="$log/$1-$2.txt"
  env $lag1 timeout 120 compute-sanitizer --tool "$1" --error-exitcode 9 .stage/flashcore validate --full --only "$2" > "$f" 2>&1
  echo "$1 $2 rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$f" | head -n 1) $(grep -E 'passed' "$f" | tail -n 1)"
  pack
done
