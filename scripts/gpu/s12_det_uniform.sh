#!/usr/bin/env bash
# Session 12: the deterministic Hopper backward with its turn spin made warp-uniform (the issuing
# warp, named through a shuffle, spins with a vote exit): bitwise-reproducibility GPU tests, then
# the deterministic rows A B A B against the previous build (.stage/flashcore-old).
# After scripts/gpu/build.sh and the old CLI staged as .stage/flashcore-old (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
timeout 80 .stage/gpu-tests --test-threads 1 deterministic > "$out/s12-det-uniform-tests.txt" 2>&1
echo "det tests rc=$? $(grep -E '^test result' "$out/s12-det-uniform-tests.txt" | tail -n 1)"
CONFIGS="old@.stage/flashcore-old:FLASHCORE_BENCH_DETERMINISTIC=1 new:FLASHCORE_BENCH_DETERMINISTIC=1" \
  ONLY="bwd-d128-s4k bwd-d64-s1k" SUITE=bwd ITERS=10 timeout 110 scripts/gpu/ab.sh > "$out/s12-det-uniform-ab.txt" 2>&1
sort -s -k3,3 "$out/s12-det-uniform-ab.txt" | awk '{k=$1" "$3; v[k]=v[k]" "$4; r[$3]=1; c[$1]=1} END {for (x in r) {printf "%-22s", x; for (y in c) printf " %s:%s", y, v[y" "x]; print ""}}' | sort
