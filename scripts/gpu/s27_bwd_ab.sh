#!/usr/bin/env bash
# Session 27: the Hopper backward's CTA start and end (the first step's loads before the zeroed
# accumulator's wait; the dQ reduces drained after the dK/dV stores are issued, not before their
# barrier), old / new A B A B on the backward rows (ONLY), then the new build's backward GPU tests
# and `validate --full --only bwd-`. Logs packed into $OUT/s27-bwd-ab.tgz after each step.
# GPU machine after scripts/gpu/build.sh and `scripts/gpu/build_at.sh BASE base` (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s27-bwd-ab
CONFIGS="${CONFIGS:-base@.stage/flashcore-base: new:}" SUITE=all ITERS=${ITERS:-20} \
  ONLY="${ONLY:-bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k bwd-d64-s4k}" bash scripts/gpu/ab.sh > "$log/ab.txt" 2>&1
cat "$log/ab.txt"
pack
[ -n "${NO_CHECKS:-}" ] && exit 0
timeout 200 .stage/gpu-tests --test-threads 1 backward > "$log/tests.txt" 2>&1
echo "backward tests rc=$? $(grep -E '^test result' "$log/tests.txt" | tail -n 1)"
grep -A3 panicked "$log/tests.txt" | head -n 8
pack
timeout 150 .stage/flashcore validate --full --only bwd- > "$log/validate-bwd.txt" 2>&1
echo "validate bwd rc=$? $(grep -cE ' pass ' "$log/validate-bwd.txt") pass, $(grep -cE ' FAIL ' "$log/validate-bwd.txt") FAIL"
grep -E ' FAIL ' "$log/validate-bwd.txt" | head -n 5
pack
