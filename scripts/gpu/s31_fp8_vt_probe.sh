#!/usr/bin/env bash
# Session 31: the FP8 in-kernel V transpose's timing probes (FLASHCORE_SM90_PROBE=16: no data
# movement, =32: one warp does it), which the knob's parser filtered out until session 31, so
# session 20's runs of them measured the unprobed kernel. Per-tensor FP8 TF/s, A B A B, with the
# separate pass, the in-kernel transpose, and the transpose's two probes (wrong outputs).
# GPU machine after scripts/gpu/build.sh and scripts/gpu/warm_cache.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
use_staged_cache
packed_logs s31-fp8-vt
CONFIGS="${CONFIGS:-pass:FLASHCORE_SM90_VT_SMEM=0 smem:FLASHCORE_SM90_VT_SMEM=1 p16:FLASHCORE_SM90_VT_SMEM=1,FLASHCORE_SM90_PROBE=16 p32:FLASHCORE_SM90_VT_SMEM=1,FLASHCORE_SM90_PROBE=32}" \
  SHAPES="${SHAPES:-s1024 d128|s4096 d128|s16384 d128}" bash scripts/gpu/fp8_ab.sh 2>&1 | tee "$log/ab.txt"
pack
