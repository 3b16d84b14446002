#!/usr/bin/env bash
# Session 26, second call: the 64x64 tile at three CTAs per SM (64x64o3s2, best of the first call's
# tiles on the d64 S512 / S1K causal rows, +9%) across the d64 causal lengths (where the planner
# switches to 192x128 from 2K keys), with the intra-warpgroup overlap and with one Q slot; and d128's
# short causal rows on 64x64 tiles at two CTAs per SM (one Q slot, so that two fit), overlapped or
# not. A B A B against the tree before (.stage/flashcore-base). GPU machine after
# scripts/gpu/build.sh (carry .stage). Logs packed into $OUT/s26-occ2.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s26-occ2
T=FLASHCORE_SM90_TILE
CONFIGS="base@.stage/flashcore-base: o3:$T=64x64o3s2 o3ov:$T=64x64o3s2,FLASHCORE_SM90_OVERLAP=1 o3q1:$T=64x64o3s2,FLASHCORE_SM90_Q_STAGES=1" \
  SUITE=all ITERS=20 ONLY="d64-s512-causal d64-s1k-causal d64-s2k-causal d64-s4k-causal d64-s16k-causal sq4097" \
  timeout 330 scripts/gpu/ab.sh > "$log/s26-occ2-ab.txt" 2>&1
pack
CONFIGS="base@.stage/flashcore-base: o2q1:$T=64x64o2s2,FLASHCORE_SM90_Q_STAGES=1 o2q1s:$T=64x64o2s2,FLASHCORE_SM90_Q_STAGES=1,FLASHCORE_SM90_OVERLAP=0" \
  SUITE=all ITERS=20 ONLY="d128-s512-causal d128-s1k-causal d128-s2k-causal" \
  timeout 150 scripts/gpu/ab.sh >> "$log/s26-occ2-ab.txt" 2>&1
sort -s -k3,3 "$log/s26-occ2-ab.txt"
pack
