#!/usr/bin/env bash
# The backward's tail split (FLASHCORE_SM90_BWD_TAIL, bench/NOTES.md session 29 item 2), written in
# session 29 without a device: (1) the last-wave test (scripts/gpu/s29_waves.py: does the CTA
# count's fraction of a wave move TF/s at all?), (2) the backward GPU tests with every allowed
# launch split (=3) and compute-sanitizer memcheck on the tail test, (3) default / tail A B A B
# in the CLI on the non-causal backward rows (=1, the planner's choice; =5, five pieces of the
# last partial wave everywhere, to calibrate the planner's per-piece cost), (4) `validate --full
# --only bwd-` with =1. Stops after (1) if STOP_AFTER_WAVES is set. Logs packed into
# $OUT/s30-tail.tgz after each step.
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s30-tail
install_wheel || exit 1
timeout 100 python3 scripts/gpu/s29_waves.py "$log/$day-$gpu-s30-waves.json" 2 > "$log/waves.log" 2>&1
echo "waves rc=$?"; grep round "$log/waves.log"
pack
[ -n "${STOP_AFTER_WAVES:-}" ] && exit 0
FLASHCORE_SM90_BWD_TAIL=3 timeout 200 .stage/gpu-tests --test-threads 1 backward > "$log/tail3-tests.log" 2>&1
echo "tail=3 backward tests rc=$? $(grep -E '^test result' "$log/tail3-tests.log" | tail -n 1)"
grep -A4 panicked "$log/tail3-tests.log" | head -n 8
# GQA groups whole per CTA, so the test's GQA / MQA shapes split too.
FLASHCORE_SM90_BWD_TAIL=3 FLASHCORE_SM90_BWD_SPLIT=1 timeout 100 .stage/gpu-tests --test-threads 1 tail_split > "$log/tail3-split1-tests.log" 2>&1
echo "tail=3 split=1 tail test rc=$? $(grep -E '^test result' "$log/tail3-split1-tests.log" | tail -n 1)"
grep -A4 panicked "$log/tail3-split1-tests.log" | head -n 8
FLASHCORE_SM90_BWD_TAIL=3 FLASHCORE_SM90_BWD_SPLIT=1 timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 \
  .stage/gpu-tests --test-threads 1 tail_split > "$log/tail3-memcheck.log" 2>&1
echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' "$log/tail3-memcheck.log" | tail -n 1)"
pack
CONFIGS="${CONFIGS:-base: tail:FLASHCORE_SM90_BWD_TAIL=1 t5:FLASHCORE_SM90_BWD_TAIL=5}" SUITE=all ITERS=${ITERS:-30} \
  ONLY="${ONLY:-bwd-d128-s1k bwd-d128-s4k bwd-d128-s16k bwd-d64-s1k bwd-d64-s4k bwd-d64-s16k}" \
  bash scripts/gpu/ab.sh > "$log/$day-$gpu-s30-tail-ab.txt" 2>&1
cat "$log/$day-$gpu-s30-tail-ab.txt"
pack
FLASHCORE_SM90_BWD_TAIL=1 timeout "${VLIMIT:-150}" .stage/flashcore validate --full --only bwd- > "$log/tail1-validate-bwd.log" 2>&1
echo "validate bwd (tail=1) rc=$? $(grep -cE ' pass ' "$log/tail1-validate-bwd.log") pass, $(grep -cE ' FAIL ' "$log/tail1-validate-bwd.log") FAIL"
pack
