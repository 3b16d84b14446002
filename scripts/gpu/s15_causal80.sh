#!/usr/bin/env bash
# Session 15: does the backward's 80-row tile pay on long causal d128 rows (and on the split MQA
# group)? The d128 causal rows and the MQA row with 64 and 80 query rows per step
# (FLASHCORE_SM90_BWD_TILE), A B A B twice (four passes), on the GPU machine after build.sh.
set -uo pipefail
. "$(dirname "$0")/env.sh"
export FLASHCORE_CACHE_DIR=/tmp/fc
timeout 120 .stage/flashcore warmup --only d128 > "$out/s15-causal80-warmup.log" 2>&1; tail -n 1 "$out/s15-causal80-warmup.log"
for rep in 1 2; do
  SUITE=bwd CONFIGS="r64:FLASHCORE_SM90_BWD_TILE=64 r80:FLASHCORE_SM90_BWD_TILE=80" \
    ONLY="bwd-d128-s4k-causal bwd-d128-s16k-causal bwd-mqa" bash "$(dirname "$0")/ab.sh" | sed "s/ p\([12]\) / p$rep\1 /"
  SUITE=bwd-long CONFIGS="r64:FLASHCORE_SM90_BWD_TILE=64 r80:FLASHCORE_SM90_BWD_TILE=80" \
    ONLY="bwd-d128-s8k-causal" bash "$(dirname "$0")/ab.sh" | sed "s/ p\([12]\) / p$rep\1 /"
done | tee "$out/s15-causal80-ab.txt"
