#!/usr/bin/env bash
# Session 10: the LSE-free row sums at d128 through a separate m64n8k16 per P·V step (config.cuh
# kSumFused off) — the Rust GPU tests (the LSE-free test now covers d128), then A B A B against the
# FADD sums without LSE (FLASHCORE_BENCH_LSE=0) on the d128 rows and 32K (clusters). On the GPU
# machine after scripts/gpu/build.sh (carry .stage); logs in $OUT. That build ran 3% slower and was
# reverted (bench/NOTES.md session 10 item 8); on later builds the two configurations are the same
# kernel at d128.
set -uo pipefail
. scripts/gpu/env.sh
timeout 220 .stage/gpu-tests --test-threads 1 > $out/s10-summma128-tests.txt 2>&1; echo "tests rc=$?" >> $out/s10-summma128-tests.txt
grep -E "test result|rc=|FAILED|panicked" $out/s10-summma128-tests.txt | head
export FLASHCORE_BENCH_LSE=0
CONFIGS="def: s0:FLASHCORE_SM90_SUM_MMA=0" ONLY="d128-s512 d128-s1k d128-s2k d128-s4k d128-s16k" SUITE=fa \
  timeout 200 scripts/gpu/ab.sh > $out/s10-summma128-ab.txt 2>&1
CONFIGS="def: s0:FLASHCORE_SM90_SUM_MMA=0" ONLY="long-32k" SUITE=long ITERS=10 timeout 120 scripts/gpu/ab.sh >> $out/s10-summma128-ab.txt 2>&1
sort -s -k3,3 $out/s10-summma128-ab.txt
