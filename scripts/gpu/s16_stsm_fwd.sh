#!/usr/bin/env bash
# Session 16: the Hopper forward's TMA-store epilogue (O into shared memory) and the backward's
# dK/dV staging with stmatrix, on the GPU machine after build.sh, .stage/flashcore-old the parent
# commit's build: forward and backward GPU tests, `validate --quick`, racecheck on two forward rows,
# then old against new, A B A B, on the short forward rows (where the epilogue is a larger share)
# and two backward rows. Logs go to $OUT; a summary is printed.
set -uo pipefail
. "$(dirname "$0")/env.sh"
export FLASHCORE_CACHE_DIR=/tmp/fc
if [ "${CHECKS:-1}" = 1 ]; then
  timeout 200 .stage/gpu-tests --test-threads 1 > "$out/s16-stsmfwd-tests.log" 2>&1
  echo "tests rc=$? $(grep -E '^test result' "$out/s16-stsmfwd-tests.log" | tail -n 1)"
  grep -A3 panicked "$out/s16-stsmfwd-tests.log" | head -n 4
  timeout 150 .stage/flashcore validate --quick > "$out/s16-stsmfwd-validate.log" 2>&1
  echo "validate rc=$? $(grep -cE ' pass ' "$out/s16-stsmfwd-validate.log") pass lines, $(grep -cE ' FAIL ' "$out/s16-stsmfwd-validate.log") FAIL"
  for row in bhsd-s2k-causal pack-gqa24-4-sq40-d64; do
    timeout 150 compute-sanitizer --tool racecheck .stage/flashcore validate --full --only "$row" > "$out/s16-stsmfwd-racecheck-$row.log" 2>&1
    echo "racecheck $row rc=$? $(grep -E 'RACECHECK SUMMARY' "$out/s16-stsmfwd-racecheck-$row.log" | tail -n 1)"
  done
fi
CONFIGS="old@.stage/flashcore-old: new:" ONLY="${ONLY:-d128-s512 d128-s1k d64-s512 d64-s1k-causal seed-h96 d128-s4k}" \
  bash "$(dirname "$0")/ab.sh" | tee "$out/s16-stsmfwd-ab.txt"
