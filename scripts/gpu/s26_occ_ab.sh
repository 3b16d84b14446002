#!/usr/bin/env bash
# Session 26: two CTAs per SM on the Hopper forward (a 64-row tile's lone consumer warpgroup beside
# another CTA's; FC_MIN_BLOCKS > 1, kernels/sm90/config.cuh kCtasPerSm), tried through
# FLASHCORE_SM90_TILE on the short d64 rows where the 128x128 two-consumer tile runs under cuDNN.
# Prediction (bench/NOTES.md session 26 item 1): the two CTAs' tiles no longer wait for each other's
# warpgroup at every key block and tile end, +3-8% on d64 S512 / S1K causal and the seed's small
# rows. Correctness of the new tiles first (validate over d64, edge and seed rows with the knob),
# then A B A B against the tree before (.stage/flashcore-base, `scripts/gpu/build_at.sh 28a56ef
# base`). GPU machine after scripts/gpu/build.sh (carry .stage). Logs packed into $OUT/s26-occ.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s26-occ
for t in ${TILES:-64x128o2s2 64x64o2s2 64x64o3s2}; do
  for o in d64-s512-causal d64-s1k-causal sq4097 seed-h8; do
    FLASHCORE_SM90_TILE=$t timeout 60 .stage/flashcore validate --full --only "$o" 2>&1 | grep -E " pass | FAIL |rror" | sed "s/^/$t /"
  done
done > "$log/s26-occ-validate.txt" 2>&1
echo "validate: $(grep -c ' pass ' "$log/s26-occ-validate.txt") pass, $(grep -c -v ' pass ' "$log/s26-occ-validate.txt") other"
grep -v ' pass ' "$log/s26-occ-validate.txt" | head -5
pack
C="base@.stage/flashcore-base: new: o2:FLASHCORE_SM90_TILE=64x128o2s2 o2ov:FLASHCORE_SM90_TILE=64x128o2s2,FLASHCORE_SM90_OVERLAP=1"
C="$C n64o2:FLASHCORE_SM90_TILE=64x64o2s2 n64o3:FLASHCORE_SM90_TILE=64x64o3s2"
CONFIGS=${CONFIGS:-$C} SUITE=fa ITERS=20 ONLY=${ONLY:-"d64-s512 d64-s1k-causal"} timeout 300 scripts/gpu/ab.sh > "$log/s26-occ-ab.txt" 2>&1
pack
CONFIGS=${CONFIGS:-$C} SUITE=seed ITERS=20 ONLY="seed-h8" timeout 100 scripts/gpu/ab.sh >> "$log/s26-occ-ab.txt" 2>&1
sort -s -k3,3 "$log/s26-occ-ab.txt"
pack
