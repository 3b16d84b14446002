#!/usr/bin/env bash
# Session 17: the Hopper forward's consumers read each tile as the producer decoded it
# (smem.cuh PublishedTile) instead of decoding the index again. GPU machine, after build.sh (carry
# .stage, with .stage/flashcore-head = the previous tree's CLI and .stage/flashcore-1fd74fa = the
# commit before the causal sections): the forward and inference GPU tests, validate --quick, then
# A B A B without the LSE (as the Python bench) on the short rows and controls.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
if [ "${CHECKS:-1}" = 1 ]; then
  timeout 200 .stage/gpu-tests --test-threads 1 --skip backward > "$out/s17-published-tests.txt" 2>&1
  echo "gpu-tests rc=$? $(grep -E '^test result' "$out/s17-published-tests.txt" | tail -n 1)"
  timeout 100 .stage/gpu-infer-tests --test-threads 1 >> "$out/s17-published-tests.txt" 2>&1
  echo "infer rc=$? $(grep -E '^test result' "$out/s17-published-tests.txt" | tail -n 1)"
  grep -A3 panicked "$out/s17-published-tests.txt" | head -n 8
  timeout 150 .stage/flashcore validate --quick > "$out/s17-published-validate.txt" 2>&1
  echo "validate rc=$? $(tail -n 1 "$out/s17-published-validate.txt")"
fi
export FLASHCORE_BENCH_LSE=0
CONFIGS="pre@.stage/flashcore-1fd74fa: head@.stage/flashcore-head: new: new0:FLASHCORE_SM90_SECTION_MIB=0" SUITE=all \
  ONLY="${ONLY:-d64-s512 d64-s1k-causal d64-s2k-causal d128-s512 seed-h8 seed-h96 d128-s4k-causal mqa16}" \
  bash scripts/gpu/ab.sh | tee "$out/s17-published-ab.txt"
