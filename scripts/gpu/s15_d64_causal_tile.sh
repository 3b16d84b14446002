#!/usr/bin/env bash
# Session 15: d64 causal forward tiles at 2K-4K keys (the planner takes 128x128 serial up to 1K keys,
# 192x128 beyond): A B A B of the default, 128x128 serial and 128x128 overlapped, without an LSE
# output (as the Python bench calls it). GPU machine after build.sh.
set -uo pipefail
. "$(dirname "$0")/env.sh"
export FLASHCORE_CACHE_DIR=/tmp/fc FLASHCORE_BENCH_LSE=0
SUITE=fa CONFIGS="default: t128:FLASHCORE_SM90_TILE=128x128s2 t128ov:FLASHCORE_SM90_TILE=128x128s2,FLASHCORE_SM90_OVERLAP=1" \
  ONLY="d64-s1k-causal d64-s2k-causal d64-s4k-causal" bash "$(dirname "$0")/ab.sh" | tee "$out/s15-d64-causal-tile-ab.txt"
