#!/usr/bin/env bash
# Session 12: the Hopper backward's warpgroup ping-pong on top of the pipelined dQ path
# (FLASHCORE_SM90_BWD_PINGPONG=1 with PIPE on, the "-pp-pipe" variants: compiled since session 4,
# never timed together), A B A B on the backward rows, after the backward GPU tests with it on;
# and the FP8 forward's causal rows with and without the causal sections (session 11 left them
# untimed). On the GPU machine after scripts/gpu/build.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
FLASHCORE_SM90_BWD_PINGPONG=1 timeout 150 .stage/gpu-tests --test-threads 1 backward > "$out/s12-bwd-pp-tests.txt" 2>&1
echo "backward tests (pp) rc=$? $(grep -E '^test result' "$out/s12-bwd-pp-tests.txt" | tail -n 1)"
CONFIGS="base: pp:FLASHCORE_SM90_BWD_PINGPONG=1" ONLY="bwd-d128-s1k bwd-d128-s4k bwd-d128-s16k bwd-d64-s1k bwd-d64-s4k bwd-d64-s16k bwd-gqa" \
  SUITE=bwd timeout 420 scripts/gpu/ab.sh > "$out/s12-bwd-pp-ab.txt" 2>&1
sort -s -k3,3 "$out/s12-bwd-pp-ab.txt" | awk '{k=$1" "$3; v[k]=v[k]" "$4; r[$3]=1; c[$1]=1} END {for (x in r) {printf "%-24s", x; for (y in c) printf " %s:%s", y, v[y" "x]; print ""}}' | sort
for p in 1 2; do
  for c in "sec16:" "old:FLASHCORE_SM90_SECTION_MIB=0"; do
    env ${c#*:} timeout 60 .stage/flashcore fp8 --bench --only "s4096" 2>&1 | grep -E " causal +(bf16|fp8-tensor) " | sed "s/^/${c%%:*} p$p /"
  done
done > "$out/s12-fp8-sections.txt" 2>&1
awk '{print $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12}' "$out/s12-fp8-sections.txt"
