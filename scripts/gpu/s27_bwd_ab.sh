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
BWD_WARM=0 bwd_checks new
pack
