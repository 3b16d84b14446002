#!/usr/bin/env bash
# The planner's cluster / rotation defaults against each forced off, A B A B, on the rows behind
# the thresholds (bench/shapes.toml suite `tune`, plus d256 S4K and 32K), and the Rust GPU tests
# with the defaults; on the GPU machine after scripts/gpu/build.sh (carry .stage). Logs in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
C="def: c0:FLASHCORE_SM90_CLUSTER=0 r0:FLASHCORE_SM90_KV_ROTATE=0 old:FLASHCORE_SM90_CLUSTER=0,FLASHCORE_SM90_KV_ROTATE=0"
CONFIGS="$C" ONLY="tune" SUITE=tune timeout 300 scripts/gpu/ab.sh > $out/tune-ab.txt 2>&1
CONFIGS="$C" ONLY="d256-s4k" SUITE=fa timeout 100 scripts/gpu/ab.sh >> $out/tune-ab.txt 2>&1
CONFIGS="$C" ONLY="long-32k" SUITE=long timeout 100 scripts/gpu/ab.sh >> $out/tune-ab.txt 2>&1
sort -s -k3,3 $out/tune-ab.txt | grep -v causal
timeout 300 .stage/gpu-tests --test-threads 1 > $out/tune-tests.txt 2>&1; echo "tests rc=$?" >> $out/tune-tests.txt
tail -n 4 $out/tune-tests.txt
