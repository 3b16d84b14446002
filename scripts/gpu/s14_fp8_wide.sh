#!/usr/bin/env bash
# Session 14: FP8 forward on 256-key blocks (FLASHCORE_SM90_FP8_TILE=128x256sS: two consumer
# warpgroups, each 64 rows x 256 keys, serial within the warpgroup). Correctness first (the FP8 GPU
# test and `flashcore fp8`'s validation rows, with and without ping-pong), then per-tensor FP8 time,
# A B A B over the current tile (192x128 at d64/d128) and the wide ones.
# On the GPU machine after scripts/gpu/build.sh (carry .stage). Logs in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
W=FLASHCORE_SM90_FP8_TILE=128x256s2
{
  for c in pp1 pp0; do
    e="$W"; [ $c = pp0 ] && e="$W FLASHCORE_SM90_PINGPONG=0"
    echo "== $c gpu test"
    env $e timeout 150 .stage/gpu-tests --test-threads 1 fp8 2>&1 | grep -E "^test |test result|panicked|fp8 \[" | tail -20
    echo "== $c validate"
    env $e timeout 150 .stage/flashcore fp8 2>&1 | tail -45
  done
} > $out/s14-fp8-wide-tests.txt 2>&1
grep -E "test result|FAIL|panicked| no$" $out/s14-fp8-wide-tests.txt | head -20
CONFIGS=${CONFIGS:-"base: w2:$W w2np:$W,FLASHCORE_SM90_PINGPONG=0 w3:FLASHCORE_SM90_FP8_TILE=128x256s3"}
SHAPES=${SHAPES:-"s4096 d128|s16384 d128|s2048 d128|s4096 d64"}
CONFIGS="$CONFIGS" SHAPES="$SHAPES" scripts/gpu/fp8_ab.sh > $out/s14-fp8-wide-ab.txt 2>&1
grep -E " fp8-tensor " $out/s14-fp8-wide-ab.txt | sort -s -k3,6 | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12}'
