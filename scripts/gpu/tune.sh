#!/usr/bin/env bash
# Tile sweep on the GPU machine: for each tile in $TILES, bench the rows whose name contains $ONLY.
#   TILES="128x64o1s2 128x64o1s3" ONLY=s4k scripts/gpu/tune.sh
# KNOB picks the variable the tile goes to: FLASHCORE_FWD_TILE (sm80 kernel, default) or
# FLASHCORE_SM90_TILE (Hopper kernel, with FLASHCORE_SM90=1).
set -uo pipefail
fc=.stage/flashcore
export FLASHCORE_CACHE_DIR=${FLASHCORE_CACHE_DIR:-/tmp/flashcore-cache}
for t in ${TILES:?}; do
  env "${KNOB:-FLASHCORE_FWD_TILE}=$t" "$fc" bench --suite "${SUITE:-fa}" --only "${ONLY:?}" --iters 20 \
    | awk -v t="$t" '/ pass | FAIL /{printf "%-14s %-20s %8s TF/s %s\n", t, $1, $(NF-3), (/ FAIL /?"FAIL":"")}'
done
