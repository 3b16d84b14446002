#!/usr/bin/env bash
# Session 31: an old / new A B A B of a backward kernel change (run for the dQ fence after dPᵀ's
# issue, then for the dQ stores under dV / dK with TAG=s31-late; bench/NOTES.md session 31).
# The new build's backward GPU tests, then old / new A B A B on the backward rows (ONLY), then
# `validate --full --only bwd-` (unless NO_VALIDATE). Output printed as it goes (tee); logs packed
# into $OUT/${TAG:-s31-bwd-ab}.tgz after each step.
# GPU machine after scripts/gpu/build.sh, `scripts/gpu/build_at.sh BASE base` and (optional)
# scripts/gpu/warm_cache.sh for both CLIs (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
[ -d .stage/fc-cache ] && mkdir -p /tmp/fc && cp -r .stage/fc-cache/. /tmp/fc/
packed_logs ${TAG:-s31-bwd-ab}
out=$log BWD_WARM=0 bwd_warm_and_test new
pack
CONFIGS="${CONFIGS:-base@.stage/flashcore-base: new:}" SUITE=bwd ITERS=${ITERS:-20} \
  ONLY="${ONLY:-bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k bwd-d64-s4k}" bash scripts/gpu/ab.sh 2>&1 | tee "$log/ab.txt"
pack
[ -n "${NO_VALIDATE:-}" ] && exit 0
timeout "${VLIMIT:-150}" .stage/flashcore validate --full --only bwd- > "$log/new-validate-bwd.log" 2>&1
echo "validate bwd rc=$? $(grep -cE ' pass ' "$log/new-validate-bwd.log") pass, $(grep -cE ' FAIL ' "$log/new-validate-bwd.log") FAIL"
grep -E ' FAIL ' "$log/new-validate-bwd.log" | head -5
pack
