#!/usr/bin/env bash
# The Hopper backward's CTAs exiting once the copy engine has read their staged dK / dV (and last
# dQ tile) rather than once the writes have landed (FLASHCORE_SM90_BWD_EXIT_READ=1, written in
# session 20 and not yet run on a GPU; bench/NOTES.md session 20 item 7): the backward GPU tests
# and `validate` backward rows with it, then A B A B against the default on the short rows where
# the exit wait shows (ncu: 2.4% of the D64 S1K backward's stall samples) and S4K as the control.
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs packed into $OUT/bwd-exit.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs bwd-exit
FLASHCORE_SM90_BWD_EXIT_READ=1 timeout 200 .stage/gpu-tests --test-threads 1 backward > "$log/bwd-exit-tests.txt" 2>&1
echo "backward tests rc=$? $(grep -E '^test result' "$log/bwd-exit-tests.txt")"
grep -A3 panicked "$log/bwd-exit-tests.txt" | head -n 8
FLASHCORE_SM90_BWD_EXIT_READ=1 timeout 200 .stage/flashcore validate --full --only bwd- > "$log/bwd-exit-validate.txt" 2>&1
echo "validate bwd rc=$? $(tail -n 1 "$log/bwd-exit-validate.txt")"
pack
CONFIGS="base: read:FLASHCORE_SM90_BWD_EXIT_READ=1" SUITE=bwd ITERS=20 \
  ONLY="bwd-d64-s1k bwd-d128-s1k bwd-d64-s4k bwd-d128-s4k" scripts/gpu/ab.sh > "$log/bwd-exit-ab.txt" 2>&1
sort -s -k3,3 "$log/bwd-exit-ab.txt"
pack
