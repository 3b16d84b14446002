#!/usr/bin/env bash
# On the GPU machine, from the repo root, after scripts/gpu/build.sh staged .stage/:
#   scripts/gpu/run.sh [tests|quick|full|bench|all] [extra flashcore bench args...]
# tests: the Rust GPU tests; quick/full: validate; bench: flashcore + SDPA peers; all: everything.
# Writes logs and JSON to $OUT (or ./out); the merged bench file is named <date>-<gpu>-<suite>.json
# so it can be copied to bench/results/.
set -uo pipefail
mode=${1:-all}
shift || true
out=${OUT:-out}
mkdir -p "$out"
fc=.stage/flashcore
export FLASHCORE_CACHE_DIR=${FLASHCORE_CACHE_DIR:-/tmp/flashcore-cache}
export PYTHONUNBUFFERED=1
rc=0
"$fc" info
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | tr ' ' '-' | tr -cd '[:alnum:]-')
day=$(date +%F)
if [ "$mode" = tests ] || [ "$mode" = all ]; then
  .stage/gpu-tests --test-threads 1 || rc=1
  # The inference paths on the planner's kernel and on the portable one (which serves them off Hopper).
  .stage/gpu-infer-tests --test-threads 1 || rc=1
  FLASHCORE_FORCE_SM80=1 .stage/gpu-infer-tests --test-threads 1 || rc=1
fi
case "$mode" in
  quick) "$fc" warmup | tail -n 1; "$fc" validate --quick --json "$out/validate-quick.json" || rc=1 ;;
  full) "$fc" warmup | tail -n 1; "$fc" warmup | tail -n 1; "$fc" validate --full --json "$out/validate-full.json" || rc=1 ;;
esac
if [ "$mode" = bench ] || [ "$mode" = all ]; then
  if [ "$mode" = all ]; then
    # Cold compiles, then the same set again from the disk cache.
    "$fc" warmup | tail -n 1
    "$fc" warmup | tail -n 1
    "$fc" validate --full --json "$out/validate-full.json" || rc=1
  fi
  "$fc" bench --suite all --json "$out/bench-flashcore.json" "$@" || rc=1
  python3 bench/peers.py --suite all --json "$out/bench-peers.json" "$@" || rc=1
  python3 bench/compare.py "$out/$day-$gpu-all.json" "$out/bench-flashcore.json" "$out/bench-peers.json" || rc=1
fi
exit $rc
