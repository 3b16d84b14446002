#!/usr/bin/env bash
# An old / new A B A B of a Hopper backward kernel change. Written for session 28's early dV
# (FC_SM90_BWD_EARLY_DV, commit 2082943, reverted after its run: bench/NOTES.md session 28 item 1);
# session 31 ran it for the dQ fence after dPᵀ's issue (TAG=s31-fence) and for the dQ stores
# beside dV / dK (TAG=s31-late).
# The new build's backward GPU tests first (a wrong kernel makes the timing moot), then old / new
# A B A B on the backward rows (ONLY), then `validate --full --only bwd-` (unless NO_VALIDATE).
# The A B A B prints as it goes (tee), so a call cut short still returns what ran; logs packed
# into $OUT/$TAG.tgz (default s28-bwd) after each step.
# GPU machine after scripts/gpu/build.sh, `scripts/gpu/build_at.sh BASE base` and (optional)
# scripts/gpu/warm_cache.sh for both CLIs (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
use_staged_cache
packed_logs "${TAG:-s28-bwd}"
out=$log BWD_WARM=0 bwd_warm_and_test new
pack
CONFIGS="${CONFIGS:-base@.stage/flashcore-base: new:}" SUITE=${SUITE:-all} ITERS=${ITERS:-20} \
  ONLY="${ONLY:-bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k bwd-d64-s4k}" bash scripts/gpu/ab.sh 2>&1 | tee "$log/ab.txt"
pack
[ -n "${NO_VALIDATE:-}" ] && exit 0
timeout "${VLIMIT:-150}" .stage/flashcore validate --full --only bwd- > "$log/new-validate-bwd.log" 2>&1
echo "validate bwd rc=$? $(grep -cE ' pass ' "$log/new-validate-bwd.log") pass, $(grep -cE ' FAIL ' "$log/new-validate-bwd.log") FAIL"
grep -E ' FAIL ' "$log/new-validate-bwd.log" | head -5
pack
