#!/usr/bin/env bash
# Session 25: the backward's wgmma descriptors as base + offset (kernels/sm90/bwd_consumer.cuh,
# wg::desc_plus_lo), against the tree before it (.stage/flashcore-base, `scripts/gpu/build_at.sh
# 88f2fe5 base`). Prediction (bench/NOTES.md session 25): the step loops 130-150 SASS instructions
# shorter (d128 80-row 803 -> 650), the descriptor arithmetic's dependency waits (about 20% of the
# loop's stall samples on the H200) mostly gone: +1-3% on the backward rows.
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs packed into $OUT/s25-desc-partN.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s25-desc-part${PART:?PART=1 or 2}
if [ "$PART" = 1 ]; then
CONFIGS="base@.stage/flashcore-base: new:" SUITE=bwd ITERS=20 ONLY="bwd-" timeout 330 scripts/gpu/ab.sh > "$log/s25-desc-ab.txt" 2>&1
CONFIGS="base@.stage/flashcore-base: new:" SUITE=bwd-long ITERS=20 ONLY="bwd-d96-s4k bwd-d128-s8k" timeout 120 scripts/gpu/ab.sh >> "$log/s25-desc-ab.txt" 2>&1
sort -s -k3,3 "$log/s25-desc-ab.txt"
pack
fi
if [ "$PART" = 2 ]; then
bwd_checks new 240
pack
fi
