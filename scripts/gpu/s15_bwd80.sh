#!/usr/bin/env bash
# Session 15: the Hopper backward's 80-row tile at d128 (FLASHCORE_SM90_BWD_TILE=80, dQᵀ per
# warpgroup) on the GPU machine after build.sh: the backward GPU tests and the d128 validate rows with
# it, compute-sanitizer on one d128 edge row, then the d128 bench rows A B A B with 64 and 80 rows
# (the bwd suite's and the bwd-long suite's). Logs go to $OUT; a summary is printed.
set -uo pipefail
. "$(dirname "$0")/env.sh"
export FLASHCORE_CACHE_DIR=/tmp/fc
timeout 120 .stage/flashcore warmup --only bwd > "$out/s15-warmup.log" 2>&1; tail -n 1 "$out/s15-warmup.log"
if [ "${CHECKS:-1}" = 1 ]; then
  FLASHCORE_SM90_BWD_TILE=80 timeout 200 .stage/gpu-tests --test-threads 1 backward > "$out/s15-bwd80-tests.log" 2>&1
  echo "tests rc=$? $(grep -E '^test result' "$out/s15-bwd80-tests.log" | tail -n 1)"
  FLASHCORE_SM90_BWD_TILE=80 timeout 150 .stage/flashcore validate --full --only bwd-d128 > "$out/s15-bwd80-validate.log" 2>&1
  echo "validate rc=$? $(tail -n 1 "$out/s15-bwd80-validate.log")"
  for tool in ${TOOLS-memcheck racecheck synccheck}; do
    row=bwd-bhsd-gqa4-s1000
    FLASHCORE_SM90_BWD_TILE=80 timeout 150 compute-sanitizer --tool "$tool" .stage/flashcore validate --full --only "$row" \
      > "$out/s15-bwd80-$tool.log" 2>&1
    echo "$tool $row rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/s15-bwd80-$tool.log" | tail -n 1)"
  done
fi
for suite in bwd bwd-long; do
  SUITE=$suite CONFIGS="r64:FLASHCORE_SM90_BWD_TILE=64 r80:FLASHCORE_SM90_BWD_TILE=80" ONLY="${ONLY:-bwd-d128}" \
    bash "$(dirname "$0")/ab.sh"
done | tee "$out/s15-bwd80-ab.txt"
