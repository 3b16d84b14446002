#!/usr/bin/env bash
# A backward knob on the GPU machine, one call: the backward GPU tests, `validate --full` over the
# backward rows and compute-sanitizer (TOOLS, default memcheck) on two edge rows (ROWS), all with
# the knob set; then the bwd bench rows A B A B without and with it (scripts/gpu/ab.sh), and the
# host time per call (HOST=0 skips it). ON / OFF: the knob's values (default 1 / 0); TOOLS="" skips
# the sanitizer.
#   KNOB=FLASHCORE_SM90_BWD_PINGPONG scripts/gpu/bwd_knob.sh     (after build.sh, build_wheel.sh)
#   KNOB=FLASHCORE_SM90_BWD_TILE ON=80 OFF=64 HOST=0 scripts/gpu/bwd_knob.sh
# Logs go to $OUT; a summary is printed.
set -uo pipefail
. "$(dirname "$0")/env.sh"
knob=${KNOB:?} on=${ON:-1} off=${OFF:-0}
export FLASHCORE_CACHE_DIR=/tmp/fc
timeout 120 .stage/flashcore warmup --only bwd > "$out/warmup.log" 2>&1; tail -n 1 "$out/warmup.log"
env "$knob=$on" timeout 200 .stage/gpu-tests --test-threads 1 backward > "$out/knob-tests.log" 2>&1
echo "tests rc=$? $(grep -E '^test result' "$out/knob-tests.log" | tail -n 1)"
env "$knob=$on" timeout 150 .stage/flashcore validate --full --only bwd- > "$out/knob-validate.log" 2>&1
echo "validate rc=$? $(tail -n 1 "$out/knob-validate.log")"
for tool in ${TOOLS-memcheck}; do
  for row in ${ROWS:-bwd-sq1000-sk4097-br bwd-bhsd-gqa4-s1000}; do
    env "$knob=$on" timeout 150 compute-sanitizer --tool "$tool" .stage/flashcore validate --full --only "$row" \
      > "$out/knob-$tool-$row.log" 2>&1
    echo "$tool $row rc=$? $(grep -E 'ERROR SUMMARY' "$out/knob-$tool-$row.log" | tail -n 1)"
  done
done
SUITE=bwd CONFIGS="${EXTRA_CONFIGS:-} base:$knob=$off knob:$knob=$on" ONLY="${ONLY:-bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k bwd-d64-s4k bwd-d128-s16k bwd-gqa bwd-mqa}" \
  bash "$(dirname "$0")/ab.sh" | tee "$out/knob-ab.txt"
[ "${HOST:-1}" = 0 ] && exit 0
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" > /dev/null 2>&1
timeout 120 python3 "$(dirname "$0")/host_overhead.py" 2>&1 | grep -v Warning | tee "$out/host-overhead.txt"
