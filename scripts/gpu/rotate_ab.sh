#!/usr/bin/env bash
# Key-loop rotation (FLASHCORE_SM90_KV_ROTATE) with and without two-CTA clusters, A B A B, on the
# GPU machine after scripts/gpu/build.sh (carry .stage). Log in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
C="c2: c0:FLASHCORE_SM90_CLUSTER=0 c2r:FLASHCORE_SM90_KV_ROTATE=1 c0r:FLASHCORE_SM90_CLUSTER=0,FLASHCORE_SM90_KV_ROTATE=1"
CONFIGS="$C" ONLY="d128-s1k d128-s4k d128-s8k d128-s16k d256-s4k" SUITE=fa timeout 400 scripts/gpu/ab.sh > $out/rot-ab.txt 2>&1
CONFIGS="$C" ONLY="long-32k" SUITE=long timeout 150 scripts/gpu/ab.sh >> $out/rot-ab.txt 2>&1
sort -s -k3,3 $out/rot-ab.txt | grep -v causal
