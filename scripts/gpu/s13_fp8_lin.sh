#!/usr/bin/env bash
# The knob this runs (FLASHCORE_EXP2_LIN) was taken out again; its code is commit 28db15d.
# Session 13: FP8 probabilities from the ALU (FLASHCORE_EXP2_LIN=k: every k-th group of 8 score
# columns through ptx::exp2_lin8 instead of MUFU). Correctness first (the FP8 GPU test, which holds
# O to 2x the naive FP8 oracle and the LSE to 1e-2 relative, and `flashcore fp8`'s validation rows),
# then RMSE beside time on the outlier test, A B A B over k = 0 (MUFU only), 2, 1.
# On the GPU machine after scripts/gpu/build.sh (carry .stage). Logs in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
for k in 1 2; do
  echo "== LIN=$k gpu test"
  FLASHCORE_EXP2_LIN=$k timeout 120 .stage/gpu-tests --test-threads 1 fp8 2>&1 | grep -E "^test |test result|panicked|fp8 \[" | tail -40
  echo "== LIN=$k validate"
  FLASHCORE_EXP2_LIN=$k timeout 120 .stage/flashcore fp8 2>&1 | tail -40
done > $out/s13-fp8-lin-tests.txt 2>&1
grep -E "test result|FAIL|panicked" $out/s13-fp8-lin-tests.txt | head
for p in 1 2; do
  for k in 0 2 1; do
    for o in "s4096 d128" "s16384 d128" "s4096 d256" "s4096 d64"; do
      FLASHCORE_EXP2_LIN=$k timeout 100 .stage/flashcore fp8 --bench --only "$o" 2>&1 | grep -E "^b[0-9]" | sed "s/^/lin$k p$p /"
    done
  done
done > $out/s13-fp8-lin-ab.txt 2>&1
grep -E " (bf16|fp8-tensor|fp8-block-had) " $out/s13-fp8-lin-ab.txt | sort -s -k3,6 | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12}'
