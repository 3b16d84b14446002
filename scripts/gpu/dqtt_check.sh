#!/usr/bin/env bash
# The first device run of FLASHCORE_SM90_BWD_DQ_TT=1 (bench/NOTES.md session 16 item 7: the Hopper
# backward's dim-major dQ tiles, written and compile-checked without a GPU). On the GPU machine after
# scripts/gpu/build.sh (carry .stage): the backward GPU tests and `validate --full --only bwd-` with
# the knob on, memcheck and racecheck on d96 and d128 edge rows (ragged, GQA) forced onto the 80-row
# tile so they take it, then the knob off / on,
# A B A B, on the rows with the transposed dQ (d128 without a causal mask, d96). Logs in $OUT.
set -uo pipefail
. "$(dirname "$0")/env.sh"
export FLASHCORE_CACHE_DIR=/tmp/fc
if [ "${CHECKS:-1}" = 1 ]; then
  FLASHCORE_SM90_BWD_DQ_TT=1 bwd_warm_and_test dqtt
  FLASHCORE_SM90_BWD_DQ_TT=1 timeout 200 .stage/flashcore validate --full --only bwd- > "$out/dqtt-validate.log" 2>&1
  echo "validate rc=$? $(tail -n 1 "$out/dqtt-validate.log")"
  for tool in ${TOOLS-memcheck racecheck}; do
    for row in bwd-s77-d96 bwd-sq1000-sk4097-br bwd-bhsd-gqa4-s1000; do
      FLASHCORE_SM90_BWD_DQ_TT=1 FLASHCORE_SM90_BWD_TILE=80 timeout 150 compute-sanitizer --tool "$tool" \
        .stage/flashcore validate --full --only "$row" > "$out/dqtt-$tool-$row.log" 2>&1
      echo "$tool $row rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/dqtt-$tool-$row.log" | tail -n 1)"
    done
  done
fi
{
  SUITE=bwd CONFIGS="off: tt:FLASHCORE_SM90_BWD_DQ_TT=1" ONLY="${ONLY:-bwd-d128-s1k bwd-d128-s4k bwd-d128-s16k}" \
    bash "$(dirname "$0")/ab.sh"
  SUITE=bwd-long CONFIGS="off: tt:FLASHCORE_SM90_BWD_DQ_TT=1" ONLY="${ONLY_LONG:-bwd-d96 bwd-d128-s2k bwd-d128-s8k}" \
    bash "$(dirname "$0")/ab.sh"
} | tee "$out/dqtt-ab.txt"
