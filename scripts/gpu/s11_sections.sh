#!/usr/bin/env bash
# Session 11: causal tiles handed out longest first across sections of heads (kernels/sm90/
# scheduler.cuh Scheduler::section, FLASHCORE_SM90_SECTION_MIB; 0 = head by head, the old order).
# Correctness first (Rust GPU tests, inference paths, validate --quick, `flashcore fp8`), then
# A B A B of the causal rows against the old order and a larger section budget.
# On the GPU machine after scripts/gpu/build.sh (carry .stage).   PART=tests|ab|ab2 (default: all)
set -uo pipefail
. scripts/gpu/env.sh
part=${PART:-all}
if [[ $part == all || $part == tests ]]; then
  timeout 220 .stage/gpu-tests --test-threads 1 > $out/s11-sections-tests.txt 2>&1; echo "tests rc=$?" >> $out/s11-sections-tests.txt
  timeout 100 .stage/gpu-infer-tests --test-threads 1 >> $out/s11-sections-tests.txt 2>&1; echo "infer tests rc=$?" >> $out/s11-sections-tests.txt
  timeout 100 .stage/flashcore validate --quick >> $out/s11-sections-tests.txt 2>&1; echo "validate rc=$?" >> $out/s11-sections-tests.txt
  timeout 120 .stage/flashcore fp8 >> $out/s11-sections-tests.txt 2>&1; echo "fp8 validate rc=$?" >> $out/s11-sections-tests.txt
  grep -E "rc=|FAIL|panicked|test result" $out/s11-sections-tests.txt | head -20
fi
if [[ $part == all || $part == ab ]]; then
  CONFIGS="sec16: old:FLASHCORE_SM90_SECTION_MIB=0 sec32:FLASHCORE_SM90_SECTION_MIB=32" \
    ONLY="d128-s1k-causal d128-s2k-causal d128-s4k-causal d128-s8k-causal d64-s512-causal d64-s1k-causal d64-s2k-causal d64-s4k-causal" \
    SUITE=fa timeout 420 scripts/gpu/ab.sh > $out/s11-sections-ab.txt 2>&1
  sort -s -k3,3 $out/s11-sections-ab.txt
fi
if [[ $part == all || $part == ab2 ]]; then
  CONFIGS="sec16: old:FLASHCORE_SM90_SECTION_MIB=0 sec32:FLASHCORE_SM90_SECTION_MIB=32" \
    ONLY="d128-s512-causal d128-s16k-causal d96-s4k-causal d256-s4k-causal" SUITE=fa timeout 250 scripts/gpu/ab.sh > $out/s11-sections-ab2.txt 2>&1
  CONFIGS="sec16: old:FLASHCORE_SM90_SECTION_MIB=0 sec32:FLASHCORE_SM90_SECTION_MIB=32" ONLY="gqa" SUITE=gqa timeout 60 scripts/gpu/ab.sh >> $out/s11-sections-ab2.txt 2>&1
  CONFIGS="sec16: old:FLASHCORE_SM90_SECTION_MIB=0" ONLY="long-32k-causal" SUITE=long timeout 60 scripts/gpu/ab.sh >> $out/s11-sections-ab2.txt 2>&1
  sort -s -k3,3 $out/s11-sections-ab2.txt
  for p in 1 2; do
    for c in "sec16:" "old:FLASHCORE_SM90_SECTION_MIB=0"; do
      env ${c#*:} timeout 60 .stage/flashcore fp8 --bench --only "s4096 d128" 2>&1 | grep -E "^b[0-9].* causal .*fp8-tensor " | sed "s/^/${c%%:*} p$p /"
    done
  done > $out/s11-sections-fp8.txt 2>&1
  cat $out/s11-sections-fp8.txt | awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9,$10}'
fi
if [[ $part == rule ]]; then
  CONFIGS="s16: old:FLASHCORE_SM90_SECTION_MIB=0 s8:FLASHCORE_SM90_SECTION_MIB=8 w1:FLASHCORE_SM90_SECTION_WAVES=1 w2:FLASHCORE_SM90_SECTION_WAVES=2" \
    ONLY="d128-s512-causal d128-s1k-causal d128-s2k-causal d128-s4k-causal d128-s8k-causal d64-s512-causal d64-s1k-causal d64-s2k-causal d64-s4k-causal" \
    SUITE=fa timeout 300 scripts/gpu/ab.sh > $out/s11-sections-rule.txt 2>&1
  CONFIGS="s16: old:FLASHCORE_SM90_SECTION_MIB=0 s8:FLASHCORE_SM90_SECTION_MIB=8 w1:FLASHCORE_SM90_SECTION_WAVES=1 w2:FLASHCORE_SM90_SECTION_WAVES=2" \
    ONLY="d128-s16k-causal d96-s4k-causal d256-s4k-causal d64-s16k-causal" SUITE=fa timeout 200 scripts/gpu/ab.sh >> $out/s11-sections-rule.txt 2>&1
  CONFIGS="s16: old:FLASHCORE_SM90_SECTION_MIB=0 s8:FLASHCORE_SM90_SECTION_MIB=8 w1:FLASHCORE_SM90_SECTION_WAVES=1 w2:FLASHCORE_SM90_SECTION_WAVES=2" \
    ONLY="gqa" SUITE=gqa timeout 60 scripts/gpu/ab.sh >> $out/s11-sections-rule.txt 2>&1
  CONFIGS="s16: old:FLASHCORE_SM90_SECTION_MIB=0" ONLY="long-32k-causal" SUITE=long timeout 60 scripts/gpu/ab.sh >> $out/s11-sections-rule.txt 2>&1
  sort -s -k3,3 $out/s11-sections-rule.txt | awk '{k=$1" "$3; v[k]=v[k]" "$4; r[$3]=1; c[$1]=1} END {for (x in r) {printf "%-20s", x; for (y in c) printf " %s:%s", y, v[y" "x]; print ""}}' | sort
fi
