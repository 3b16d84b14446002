#!/usr/bin/env bash
# Session 19: FP8 d128 on 256-key blocks (two consumers, FLASHCORE_SM90_FP8_TILE=128x256s2) with P
# from shared memory (FLASHCORE_SM90_P_SMEM=1, now for 256-key blocks too), so that the two
# consumers can overlap (S 128 + O 64 registers, P in shared memory) and ping-pong. Correctness
# of the overlapped configurations (FP8 GPU test, `flashcore fp8` rows), then per-tensor FP8 A B A B
# against the default 192x128 tile; then the default FP8 GPU test six times with its whole panic
# message kept (session 18's one-in-ten failure).
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs packed into $OUT/s19-wide.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_BENCH_LSE=0 FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s19-wide
W=FLASHCORE_SM90_FP8_TILE=128x256s2,FLASHCORE_SM90_P_SMEM=1
for c in "wpsov:$W,FLASHCORE_SM90_OVERLAP=1" "wpsovpp:$W,FLASHCORE_SM90_OVERLAP=1,FLASHCORE_SM90_PINGPONG=1"; do
  label=${c%%:*}; e=${c#*:}
  {
    echo "== $label: FP8 GPU test"
    env ${e//,/ } timeout 100 .stage/gpu-tests --test-threads 1 fp8 2>&1 | grep -E -A8 "^test |test result|panicked" | head -30
    echo "== $label: flashcore fp8 (d128 rows)"
    env ${e//,/ } timeout 100 .stage/flashcore fp8 2>&1 | grep -E "d128|FAIL|rror" | head -30
  } >> "$log/s19-wide-tests.txt" 2>&1
  pack
done
grep -E "test result|FAIL|panicked| no$" "$log/s19-wide-tests.txt" | head
CONFIGS="base: wide:FLASHCORE_SM90_FP8_TILE=128x256s2 wps:$W wpsov:$W,FLASHCORE_SM90_OVERLAP=1 wpsovpp:$W,FLASHCORE_SM90_OVERLAP=1,FLASHCORE_SM90_PINGPONG=1" \
  SHAPES="s4096 d128|s16384 d128" scripts/gpu/fp8_ab.sh > "$log/s19-fp8-wide-ab.txt" 2>&1
grep -E " fp8-tensor " "$log/s19-fp8-wide-ab.txt" | sort -s -k3,6 | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9,$10}'
pack
for i in 1 2 3 4 5 6; do
  echo "== default FP8 GPU test, run $i"
  timeout 60 .stage/gpu-tests --test-threads 1 fp8 2>&1 | grep -E -A12 "test result|panicked" | head -16
done > "$log/s19-fp8-flake-tests.txt" 2>&1
grep -E "test result" "$log/s19-fp8-flake-tests.txt"
pack
