#!/usr/bin/env bash
# Session 24: the defaults that trade memory traffic against the main kernels' time were tuned on
# the H100 (3.35 TB/s, 50 MB L2); the H200 has 4.8 TB/s and 60 MiB. A B C A B C in one process tree
# (scripts/gpu/ab.sh, CLI, TF/s): the backward's in-kernel dQ conversion and zeroing against the
# post / prep passes doing them, and the forward's causal-section L2 budget (16 MiB against 32).
# GPU machine after scripts/gpu/build.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
CONFIGS="base: noconv:FLASHCORE_SM90_BWD_CONVERT=0 nozero:FLASHCORE_SM90_BWD_ZERO=0" SUITE=bwd ITERS=20 \
  ONLY="bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k" timeout 300 scripts/gpu/ab.sh > "$out/s24-h200-bwd-ab.txt" 2>&1
sort -s -k3,3 "$out/s24-h200-bwd-ab.txt"
for s in "fa d128-s2k-causal d64-s4k-causal d128-s8k-causal" "gqa gqa32-8-s8k-causal"; do
  CONFIGS="base: sec32:FLASHCORE_SM90_SECTION_MIB=32" SUITE=${s%% *} ONLY=${s#* } ITERS=20 \
    timeout 150 scripts/gpu/ab.sh >> "$out/s24-h200-fwd-ab.txt" 2>&1
done
sort -s -k3,3 "$out/s24-h200-fwd-ab.txt"
