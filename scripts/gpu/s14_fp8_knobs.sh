#!/usr/bin/env bash
# Session 14: FP8 d128 schedules not measured before: the two-consumer 128x128 tile with the
# intra-warpgroup overlap but without ping-pong, with a third stage, against the default 192x128
# serial tile. Per-tensor FP8 time (`flashcore fp8 --bench --modes fp8-tensor`), A B A B.
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
T=FLASHCORE_SM90_FP8_TILE
CONFIGS=${CONFIGS:-"base: t128:$T=128x128s2 t128np:$T=128x128s2,FLASHCORE_SM90_PINGPONG=0 t128s3np:$T=128x128s3,FLASHCORE_SM90_PINGPONG=0 t128ser:$T=128x128s2,FLASHCORE_SM90_OVERLAP=0,FLASHCORE_SM90_PINGPONG=0"}
SHAPES=${SHAPES:-"s4096 d128|s16384 d128"}
CONFIGS="$CONFIGS" SHAPES="$SHAPES" scripts/gpu/fp8_ab.sh > $out/s14-fp8-knobs-ab.txt 2>&1
grep -E " fp8-tensor " $out/s14-fp8-knobs-ab.txt | sort -s -k3,6 | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9}'
