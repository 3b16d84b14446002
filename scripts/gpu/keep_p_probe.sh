#!/usr/bin/env bash
# Keep-P A/B on the GPU machine (after scripts/gpu/build.sh; carry .stage): 16-bit non-causal rows
# with FLASHCORE_SM90_KEEP_P=1 against the defaults (scripts/gpu/ab.sh), and the FP8 bench rows of
# d64 S4K and d128 S1K (whose tiles run the overlapped loop) both ways, twice. Logs go to $OUT.
set -uo pipefail
. scripts/gpu/env.sh
CONFIGS="base: kp:FLASHCORE_SM90_KEEP_P=1" ONLY="d96-s4k d128-s2k d128-s8k" SUITE=fa timeout 200 scripts/gpu/ab.sh > $out/kp-noncausal.txt 2>&1
for p in 1 2; do for c in base kp; do
  e=""; [ $c = kp ] && e="FLASHCORE_SM90_KEEP_P=1"
  for o in "s4096 d64" "s1024 d128"; do echo "== $c p$p $o"; env $e timeout 120 .stage/flashcore fp8 --bench --only "$o" 2>&1 | grep -E "^b[0-9]"; done
done; done > $out/fp8-kp.txt 2>&1
