#!/usr/bin/env bash
# Session 16: dS of the Hopper backward stored with stmatrix (one per k16 step instead of four
# 4-byte stores per lane pair) on the GPU machine after build.sh, with .stage/flashcore-old the
# build of the parent commit: backward GPU tests, `validate --full --only bwd-`, racecheck and
# memcheck on a d64 and a d128 causal edge row, then old against new, A B A B, on the rows that
# take the changed store (d64, and d128 causal on 64 rows). Logs go to $OUT; a summary is printed.
set -uo pipefail
. "$(dirname "$0")/env.sh"
export FLASHCORE_CACHE_DIR=/tmp/fc
if [ "${CHECKS:-1}" = 1 ]; then
  bwd_warm_and_test s16-stsm
  timeout 200 .stage/flashcore validate --full --only bwd- > "$out/s16-stsm-validate.log" 2>&1
  echo "validate rc=$? $(tail -n 1 "$out/s16-stsm-validate.log")"
  for tool in ${TOOLS-memcheck racecheck}; do
    for row in bwd-sq4097-sk1000-br bwd-bhsd-gqa4-s1000; do
      timeout 150 compute-sanitizer --tool "$tool" .stage/flashcore validate --full --only "$row" \
        > "$out/s16-stsm-$tool-$row.log" 2>&1
      echo "$tool $row rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/s16-stsm-$tool-$row.log" | tail -n 1)"
    done
  done
fi
SUITE=bwd CONFIGS="old@.stage/flashcore-old: new:" ONLY="${ONLY:-bwd-d64 causal gqa}" \
  bash "$(dirname "$0")/ab.sh" | tee "$out/s16-stsm-ab.txt"
