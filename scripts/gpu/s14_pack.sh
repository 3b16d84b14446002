#!/usr/bin/env bash
# Session 14: GQA query heads packed into each Hopper forward tile at any query length
# (FLASHCORE_SM90_PACK=k; plan/tiles.rs sm90_pack packs only when a head's queries fit one tile).
# Correctness with k = 2 and 4 (the forward GPU tests, the inference-path tests, validate --quick),
# then the GQA rows A B A B. GPU machine after scripts/gpu/build.sh (carry .stage). Logs in $OUT.
#   PARTS="tests ab" (default: both)
set -uo pipefail
. scripts/gpu/env.sh
parts=${PARTS:-tests ab}
skip="--skip backward --skip deterministic_backward --skip windowed_backward --skip softcap_backward --skip hopper_backward"
if [[ " $parts " == *" tests "* ]]; then
  for k in 2 4; do
    echo "== PACK=$k"
    FLASHCORE_SM90_PACK=$k timeout 150 .stage/gpu-tests --test-threads 1 $skip 2>&1 | grep -E "^test |test result|panicked"
    FLASHCORE_SM90_PACK=$k timeout 150 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E "test result|panicked"
    FLASHCORE_SM90_PACK=$k timeout 150 .stage/flashcore validate --quick 2>&1 | grep -E "gqa|mqa|pack|FAIL|rows" | head -20
  done > $out/s14-pack-tests.txt 2>&1
  grep -E "test result|FAIL|panicked|failed" $out/s14-pack-tests.txt
fi
if [[ " $parts " == *" ab "* ]]; then
  CONFIGS=${CONFIGS:-"base: p2:FLASHCORE_SM90_PACK=2 p4:FLASHCORE_SM90_PACK=4 p8:FLASHCORE_SM90_PACK=8"} SUITE=gqa \
    ONLY=${ONLY:-"gqa32-8-s8k-causal mqa16-1-s2k"} scripts/gpu/ab.sh > $out/s14-pack-ab.txt 2>&1
  sort -s -k3,3 $out/s14-pack-ab.txt
fi
