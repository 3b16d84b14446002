#!/usr/bin/env bash
# The knob this runs (FLASHCORE_SM90_BWD_ROTATE) was taken out again; its code is commit ec4be67.
# Session 13: the Hopper backward's non-causal query walks started at a block spread by the key
# block (FLASHCORE_SM90_BWD_ROTATE=1), so the CTAs of a head do not bulk-reduce into the same dQ
# tile at the same time. Correctness with the knob on (backward GPU tests, `validate --full` over
# the backward rows), then A B A B against the default (causal rows are controls: the knob leaves
# them alone). On the GPU machine after scripts/gpu/build.sh (carry .stage). Logs in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
{
  FLASHCORE_SM90_BWD_ROTATE=1 timeout 300 .stage/gpu-tests --test-threads 1 backward 2>&1 | grep -E "^test |test result|panicked"
  FLASHCORE_SM90_BWD_ROTATE=1 timeout 200 .stage/flashcore validate --full --only bwd- 2>&1 | tail -30
} > $out/s13-bwd-rotate-tests.txt 2>&1
grep -E "test result|FAIL|passed|rows" $out/s13-bwd-rotate-tests.txt | tail -5
CONFIGS="off: rot:FLASHCORE_SM90_BWD_ROTATE=1" ONLY="${ONLY:-bwd-d128-s1k bwd-d128-s4k bwd-d64-s1k bwd-d64-s4k bwd-mqa}" SUITE=bwd \
  timeout 400 scripts/gpu/ab.sh > $out/s13-bwd-rotate-ab.txt 2>&1
sort -s -k3,3 $out/s13-bwd-rotate-ab.txt
