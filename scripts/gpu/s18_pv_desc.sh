#!/usr/bin/env bash
# Session 18: P·V's step descriptors as the stage's base descriptor plus an offset too (consumer.cuh
# gemm_pv), as Q·Kᵀ's already were: all 120 sm_90a forward main loops shorter again (82016 ->
# 79356 instructions; d64 192x128 532 -> 511, d128 671 -> 643). A B A B against the committed tree
# (deba41e, "head"), no LSE, then the forward, FP8 and inference GPU tests.
# Here first: scripts/gpu/build.sh && scripts/gpu/build_at.sh deba41e head
# GPU machine; carry .stage. Logs packed into $OUT/s18-pv-desc.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_BENCH_LSE=0 FLASHCORE_CACHE_DIR=/tmp/fc
tgz=$out/s18-pv-desc.tgz
out=/tmp/s18-pv-desc
mkdir -p "$out"
pack() { tar czf "$tgz" -C "$out" .; }
C="head@.stage/flashcore-head: new:"
{
  CONFIGS="$C" SUITE=fa ONLY="d64-s d128-s" bash scripts/gpu/ab.sh
  CONFIGS="$C" SUITE=gqa ONLY="gqa32 mqa16" bash scripts/gpu/ab.sh
  CONFIGS="$C" SUITE=seed ONLY=seed-h96 bash scripts/gpu/ab.sh
} > "$out/s18-pv-desc-ab.txt" 2>&1
pack
CONFIGS="head@.stage/flashcore-head: new:" SHAPES="s4096 d128|s16384 d128|s4096 d64|s4096 d256" scripts/gpu/fp8_ab.sh > "$out/s18-fp8-pv-desc-ab.txt"
pack
{
  timeout 120 .stage/gpu-tests --test-threads 1 --skip backward 2>&1 | grep -E -A4 "^test |test result|panicked"
  timeout 100 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E -A4 "^test |test result|panicked"
} > "$out/s18-pv-desc-tests.txt"
grep -E "test result" "$out/s18-pv-desc-tests.txt"
pack
