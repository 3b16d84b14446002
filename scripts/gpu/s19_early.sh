#!/usr/bin/env bash
# Session 19 (the knob is in commit a805afd, removed after this run: slower): the next tile's first
# Q·Kᵀ issued right after a tile's last P·V, so that it runs under
# the tile's epilogue (FLASHCORE_SM90_EARLY_QK=1, kernels/sm90/config.cuh kEarlyQk). Correctness
# with the knob (forward GPU tests, `validate --full` on the edge rows, compute-sanitizer on a row
# whose first tiles see no key and on a causal d128 row, with SANITIZE=1), then A B A B on the short rows where a
# tile's boundary weighs most: the previous commit's binary (old, scripts/gpu/build_at.sh), this
# tree with the knob off (new) and on (early).
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs packed into $OUT/s19-early.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_BENCH_LSE=0 FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s19-early
E=FLASHCORE_SM90_EARLY_QK=1
{
  echo "== forward GPU tests, early QK"
  env $E timeout 150 .stage/gpu-tests --test-threads 1 --skip backward --skip fp8 2>&1 | grep -E -A6 "^test |test result|panicked" | head -40
  echo "== validate --full edge rows, early QK"
  for r in sq1000 sq4097 s1 s17 s1000 s4097 pack- bhsd-; do
    env $E timeout 60 .stage/flashcore validate --full --only "$r" 2>&1 | grep -E " pass | FAIL |rror" | grep -v bwd
  done
  if [ -n "${SANITIZE:-}" ]; then
    for row in sq4097-sk1000-br bhsd-s2k-causal; do
      for tool in memcheck racecheck synccheck; do
        echo "== $row $tool, early QK"
        env $E timeout 90 compute-sanitizer --tool "$tool" .stage/flashcore validate --full --only "$row" 2>&1 \
          | grep -E "ERROR SUMMARY|RACECHECK SUMMARY|hazard|pass|FAIL|rror" | grep -v "^name" | head -n 6
      done
    done
  fi
} > "$log/s19-early-tests.txt" 2>&1
grep -E "test result|FAIL|panicked|SUMMARY" "$log/s19-early-tests.txt" | head -20
pack
C="old@.stage/flashcore-base: new: early:$E"
{
  CONFIGS="$C" SUITE=fa ONLY="d128-s512 d128-s1k d64-s512 d64-s1k-causal d128-s4k" bash scripts/gpu/ab.sh
  CONFIGS="$C" SUITE=seed ONLY="seed-h96" bash scripts/gpu/ab.sh
} > "$log/s19-early-ab.txt" 2>&1
sort -s -k3,3 "$log/s19-early-ab.txt"
pack
