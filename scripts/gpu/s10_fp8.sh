#!/usr/bin/env bash
# Session 10: the rescale slack on the FP8 forward, whose P already carries 2^FLASHCORE_FP8_P_LOG2
# (P8 slack 0 = the defaults, P6 slack 2, P4 slack 4; RMSE beside time, `flashcore fp8 --bench`
# rows), and keep-P on the 16-bit d128 non-causal rows now that the slack shortened the softmax;
# A B A B on the GPU machine after scripts/gpu/build.sh (carry .stage). Logs in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
for p in 1 2; do
  for c in "p8s0:" "p6s2:FLASHCORE_FP8_P_LOG2=6 FLASHCORE_RESCALE_SLACK=2" "p4s4:FLASHCORE_FP8_P_LOG2=4 FLASHCORE_RESCALE_SLACK=4"; do
    for o in "s4096 d128" "s16384 d128" "s4096 d256" "s4096 d64"; do
      env ${c#*:} timeout 100 .stage/flashcore fp8 --bench --only "$o" 2>&1 | grep -E "^b[0-9]" | sed "s/^/${c%%:*} p$p /"
    done
  done
done > $out/s10-fp8-slack.txt 2>&1
grep -E " (bf16|fp8-tensor|per-tensor|tensor) " $out/s10-fp8-slack.txt | head -5
CONFIGS="def: kp1:FLASHCORE_SM90_KEEP_P=1" ONLY="d128-s2k d128-s4k d128-s8k" SUITE=fa timeout 150 scripts/gpu/ab.sh > $out/s10-keepp-ab.txt 2>&1
sort -s -k3,3 $out/s10-keepp-ab.txt | grep -v causal
