#!/usr/bin/env bash
# Session 12, last call: the early Q·K_0ᵀ with the LSE stored before it (its per-lane branches had
# taken the wgmma descriptors off the uniform datapath), alone and with the storer. validate
# --quick with each, then A B A B on three rows. After scripts/gpu/build.sh (carry .stage).
# Outcome (bench/NOTES.md, session 12, item 9): slower (D128 S4K 690 -> 670-676), and this port
# had a bug (d256, without the TMA-store epilogue, stored from a buffer it does not have: validate
# failed with an illegal address); taken out again, the code is commit 84e0a26.
set -uo pipefail
. scripts/gpu/env.sh
for k in "FLASHCORE_SM90_EARLY_QK=1" "FLASHCORE_SM90_EARLY_QK=1 FLASHCORE_SM90_STORER=1"; do
  env $k timeout 60 .stage/flashcore validate --quick > "$out/s12-early-lse-validate.txt" 2>&1
  echo "validate ($k) rc=$? $(tail -n 1 "$out/s12-early-lse-validate.txt")"
done
CONFIGS="base: early:FLASHCORE_SM90_EARLY_QK=1 both:FLASHCORE_SM90_EARLY_QK=1,FLASHCORE_SM90_STORER=1" \
  ONLY="d128-s512 d128-s4k" SUITE=fa ITERS=15 timeout 120 scripts/gpu/ab.sh > "$out/s12-early-lse-ab.txt" 2>&1
CONFIGS="base: early:FLASHCORE_SM90_EARLY_QK=1 both:FLASHCORE_SM90_EARLY_QK=1,FLASHCORE_SM90_STORER=1" \
  ONLY="seed-h96" SUITE=seed ITERS=15 timeout 40 scripts/gpu/ab.sh >> "$out/s12-early-lse-ab.txt" 2>&1
sort -s -k3,3 "$out/s12-early-lse-ab.txt" | awk '{k=$1" "$3; v[k]=v[k]" "$4; r[$3]=1; c[$1]=1} END {for (x in r) {printf "%-20s", x; for (y in c) printf " %s:%s", y, v[y" "x]; print ""}}' | sort
