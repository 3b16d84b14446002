#!/usr/bin/env bash
# Session 10: the softmax's row sums from P·V's extra columns of ones (plan::Variant::with_sum_mma:
# calls without an LSE at FP8 d64/d128 and 16-bit d64; FLASHCORE_SM90_SUM_MMA=0 turns it off) —
# correctness first (Rust GPU tests, validate --quick, inference paths, `flashcore fp8`), then
# A B A B against the FADD sums on the d64 rows (timed without LSE, FLASHCORE_BENCH_LSE=0), the seed
# and the FP8 bench rows. On the GPU machine after scripts/gpu/build.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
timeout 220 .stage/gpu-tests --test-threads 1 > $out/s10-summma-tests.txt 2>&1; echo "tests rc=$?" >> $out/s10-summma-tests.txt
tail -n 2 $out/s10-summma-tests.txt
timeout 100 .stage/gpu-infer-tests --test-threads 1 >> $out/s10-summma-tests.txt 2>&1; echo "infer tests rc=$?" >> $out/s10-summma-tests.txt
tail -n 2 $out/s10-summma-tests.txt
timeout 100 .stage/flashcore validate --quick >> $out/s10-summma-tests.txt 2>&1; echo "validate rc=$?" >> $out/s10-summma-tests.txt
timeout 120 .stage/flashcore fp8 >> $out/s10-summma-tests.txt 2>&1; echo "fp8 validate rc=$?" >> $out/s10-summma-tests.txt
grep -E "rc=|FAIL|panicked" $out/s10-summma-tests.txt | head -20
export FLASHCORE_BENCH_LSE=0
CONFIGS="def: s0:FLASHCORE_SM90_SUM_MMA=0" ONLY="d64-s512 d64-s1k d64-s4k d64-s16k" SUITE=fa timeout 150 scripts/gpu/ab.sh > $out/s10-summma-ab.txt 2>&1
CONFIGS="def: s0:FLASHCORE_SM90_SUM_MMA=0" ONLY="seed-h96" SUITE=seed timeout 40 scripts/gpu/ab.sh >> $out/s10-summma-ab.txt 2>&1
sort -s -k3,3 $out/s10-summma-ab.txt
for p in 1 2; do
  for c in "def:" "s0:FLASHCORE_SM90_SUM_MMA=0"; do
    for o in "s4096 d128" "s16384 d128" "s4096 d64"; do
      env ${c#*:} timeout 60 .stage/flashcore fp8 --bench --only "$o" 2>&1 | grep -E "^b[0-9]" | sed "s/^/${c%%:*} p$p /"
    done
  done
done > $out/s10-summma-fp8.txt 2>&1
grep -E " (bf16|fp8-tensor) " $out/s10-summma-fp8.txt | sort -s -k4,6 | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12}'
