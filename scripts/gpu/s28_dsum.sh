#!/usr/bin/env bash
# Session 28 (reverted after these runs, bench/NOTES.md session 28 item 3; the knob is gone): D = rowsum(dO ∘ O)
# and lse2 computed by the Hopper backward's zeroing warps for the
# rows they zero (BwdParams::dsum_main), the prep kernel only for the rows before zero_lag.
# PART=1: old / new / new with FLASHCORE_SM90_BWD_DSUM=0, A B A B on the backward rows (ONLY), then
# `validate --full --only bwd-`. PART=2: the backward GPU tests as they are and with the in-kernel
# zeroing and conversion forced on every row but the first (lags of 1: the D pass on small shapes,
# GQA, Sq != Sk, ragged rows), then the Python backward GPU tests with the zeroing lag of 1 (the
# LSE gradient's rows). Logs packed into $OUT/s28-dsum-PART.tgz after each step.
# GPU machine after scripts/gpu/build.sh, build_wheel.sh and `build_at.sh BASE base` (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs "s28-dsum-${PART:-1}"
if [ "${PART:-1}" = 1 ]; then
  CONFIGS="${CONFIGS:-base@.stage/flashcore-base: new: nod:FLASHCORE_SM90_BWD_DSUM=0}" SUITE=all ITERS=${ITERS:-20} \
    ONLY="${ONLY:-bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k bwd-d64-s4k}" bash scripts/gpu/ab.sh > "$log/ab.txt" 2>&1
  cat "$log/ab.txt"
  pack
  timeout "${VLIMIT:-150}" .stage/flashcore validate --full --only bwd- > "$log/new-validate-bwd.log" 2>&1
  echo "validate bwd rc=$? $(grep -cE ' pass ' "$log/new-validate-bwd.log") pass, $(grep -cE ' FAIL ' "$log/new-validate-bwd.log") FAIL"
  pack
  exit 0
fi
out=$log BWD_WARM=0 bwd_warm_and_test new
pack
out=$log FLASHCORE_SM90_BWD_ZERO_LAG=1 FLASHCORE_SM90_BWD_CONVERT_LAG=1 BWD_WARM=0 bwd_warm_and_test lag1
pack
install_wheel
FLASHCORE_SM90_BWD_ZERO_LAG=1 timeout 240 python3 -m pytest -p no:cacheprovider -q -m gpu -ra python/tests/test_gpu_backward.py > "$log/python-bwd-lag1.txt" 2>&1
echo "python backward (zero lag 1) rc=$? $(tail -n 1 "$log/python-bwd-lag1.txt")"
pack
