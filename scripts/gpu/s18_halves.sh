#!/usr/bin/env bash
# Session 18: the FP8 forward's key blocks as two pipelined halves within each consumer warpgroup
# (FLASHCORE_SM90_HALVES=1, kernels/sm90/consumer.cuh Mainloop::run_halves; the code is commit
# 1786e4e, taken out after this run: 10-12% slower) against the serial
# three-consumer loop. Correctness first (the FP8 GPU test and `flashcore fp8`'s validation rows
# with the knob), then per-tensor FP8 time A B A B (scripts/gpu/fp8_ab.sh).
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs in $OUT, packed into one archive.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
H=FLASHCORE_SM90_HALVES=1
{
  echo "== halves: FP8 GPU test"
  env $H timeout 150 .stage/gpu-tests --test-threads 1 fp8 2>&1 | grep -E "^test |test result|panicked|fp8 \[" | tail -20
  echo "== halves: flashcore fp8"
  env $H timeout 150 .stage/flashcore fp8 2>&1 | tail -45
} > "$out/s18-halves-tests.txt" 2>&1
grep -E "test result|FAIL|panicked| no$" "$out/s18-halves-tests.txt" | head -20
CONFIGS=${CONFIGS:-"base: halves:$H"}
SHAPES=${SHAPES:-"s4096 d128|s16384 d128|s2048 d128"}
CONFIGS="$CONFIGS" SHAPES="$SHAPES" scripts/gpu/fp8_ab.sh > "$out/s18-halves-ab.txt" 2>&1
grep -E " fp8-tensor " "$out/s18-halves-ab.txt" | sort -s -k3,6 | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9,$10}'
tar czf "$out/s18-halves.tgz" -C "$out" s18-halves-tests.txt s18-halves-ab.txt
