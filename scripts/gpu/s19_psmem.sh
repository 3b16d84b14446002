#!/usr/bin/env bash
# Session 19: the FP8 forward's P·V reading P from shared memory (FLASHCORE_SM90_P_SMEM=1,
# kernels/sm90/config.cuh kPSmem), which frees P's registers while P·V is in flight, so that the
# three-consumer FP8 tile can run the intra-warpgroup overlap (FLASHCORE_SM90_OVERLAP=1) or the
# paired loop (FLASHCORE_SM90_PAIRED=1, removed after this run; the knob is in commit 9ef136e)
# at 160 registers.
# Correctness first (FP8 GPU test and `flashcore fp8` validation per configuration),
# then A B A B of FP8 per tensor (scripts/gpu/fp8_ab.sh).
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs packed into $OUT/s19-psmem.tgz after
# every step (the device returns few files).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_BENCH_LSE=0 FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s19-psmem
PS=FLASHCORE_SM90_P_SMEM=1
FP8_CONFIGS=${FP8_CONFIGS:-"psmem:$PS psov:$PS,FLASHCORE_SM90_OVERLAP=1 pspair:$PS,FLASHCORE_SM90_PAIRED=1"}
for c in $FP8_CONFIGS; do
  label=${c%%:*}; e=${c#*:}
  {
    echo "== $label: FP8 GPU test"
    env ${e//,/ } timeout 150 .stage/gpu-tests --test-threads 1 fp8 2>&1 | grep -E -A6 "^test |test result|panicked" | head -30
    echo "== $label: flashcore fp8"
    env ${e//,/ } timeout 150 .stage/flashcore fp8 2>&1 | tail -45
  } >> "$log/s19-psmem-tests.txt" 2>&1
  pack
done
grep -E "test result|FAIL|panicked| no$" "$log/s19-psmem-tests.txt" | head -20
pack
CONFIGS="base: $FP8_CONFIGS psovpp:$PS,FLASHCORE_SM90_OVERLAP=1,FLASHCORE_SM90_PINGPONG=1" \
  SHAPES=${SHAPES:-"s4096 d128|s16384 d128|s4096 d256|s4096 d64"} scripts/gpu/fp8_ab.sh > "$log/s19-psmem-fp8-ab.txt" 2>&1
grep -E " fp8-tensor " "$log/s19-psmem-fp8-ab.txt" | sort -s -k3,6 | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9,$10}'
pack
