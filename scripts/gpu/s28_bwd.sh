#!/usr/bin/env bash
# Session 28 (reverted after this run, bench/NOTES.md session 28 item 1): the Hopper backward's dV GEMM
# issued before dPᵀ is waited for (FC_SM90_BWD_EARLY_DV, commit 2082943). Reusable for any old / new backward A B A B.
# The new build's backward GPU tests first (a wrong kernel makes the timing moot), then old / new
# A B A B on the backward rows (ONLY), then `validate --full --only bwd-` (unless NO_VALIDATE).
# Logs packed into $OUT/s28-bwd.tgz after each step.
# GPU machine after scripts/gpu/build.sh and `scripts/gpu/build_at.sh BASE base` (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s28-bwd
out=$log BWD_WARM=0 bwd_warm_and_test new
pack
CONFIGS="${CONFIGS:-base@.stage/flashcore-base: new:}" SUITE=all ITERS=${ITERS:-20} \
  ONLY="${ONLY:-bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k bwd-d64-s4k}" bash scripts/gpu/ab.sh > "$log/ab.txt" 2>&1
cat "$log/ab.txt"
pack
[ -n "${NO_VALIDATE:-}" ] && exit 0
timeout "${VLIMIT:-150}" .stage/flashcore validate --full --only bwd- > "$log/new-validate-bwd.log" 2>&1
echo "validate bwd rc=$? $(grep -cE ' pass ' "$log/new-validate-bwd.log") pass, $(grep -cE ' FAIL ' "$log/new-validate-bwd.log") FAIL"
pack
