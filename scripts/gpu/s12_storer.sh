#!/usr/bin/env bash
# Session 12: the forward's TMA stores of O issued by a thread of the producer warpgroup
# (FLASHCORE_SM90_STORER=1, kernels/sm90/config.cuh kStorer): the consumer's epilogue writes its O
# buffer, fences and arrives on an mbarrier, with no named barrier and no TMA issue. Correctness
# with it on (Rust GPU tests, validate --quick), then A B A B against it off on the short rows.
# On the GPU machine after scripts/gpu/build.sh (carry .stage).   PART=tests|ab (default: both)
# Outcome (bench/NOTES.md, session 12, item 7): correct, within +-1.5%; the knob was taken out
# again; the code is commit 449654b.
set -uo pipefail
. scripts/gpu/env.sh
part=${PART:-all}
if [[ $part == all || $part == tests ]]; then
  FLASHCORE_SM90_STORER=1 timeout 200 .stage/gpu-tests --test-threads 1 > "$out/s12-storer-tests.txt" 2>&1
  echo "tests rc=$?" >> "$out/s12-storer-tests.txt"
  FLASHCORE_SM90_STORER=1 timeout 100 .stage/flashcore validate --quick >> "$out/s12-storer-tests.txt" 2>&1
  echo "validate rc=$?" >> "$out/s12-storer-tests.txt"
  grep -E "rc=|FAIL|panicked|test result" "$out/s12-storer-tests.txt" | head
fi
if [[ $part == all || $part == ab ]]; then
  CONFIGS="base: storer:FLASHCORE_SM90_STORER=1" ONLY="d128-s512 d128-s2k d128-s4k d64-s512" SUITE=fa \
    timeout 250 scripts/gpu/ab.sh > "$out/s12-storer-ab.txt" 2>&1
  CONFIGS="base: storer:FLASHCORE_SM90_STORER=1" ONLY="seed-h96" SUITE=seed timeout 60 scripts/gpu/ab.sh >> "$out/s12-storer-ab.txt" 2>&1
  CONFIGS="base: storer:FLASHCORE_SM90_STORER=1" ONLY="qa" SUITE=gqa timeout 90 scripts/gpu/ab.sh >> "$out/s12-storer-ab.txt" 2>&1
  sort -s -k3,3 "$out/s12-storer-ab.txt" | awk '{k=$1" "$3; v[k]=v[k]" "$4; r[$3]=1; c[$1]=1} END {for (x in r) {printf "%-20s", x; for (y in c) printf " %s:%s", y, v[y" "x]; print ""}}' | sort
fi
