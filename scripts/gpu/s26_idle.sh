#!/usr/bin/env bash
# Session 26: consumer warpgroups with no row in the sequence skip the main loop (Sm90::kIdleWg:
# they only take and release the K / V stages and pass their ping-pong turns), and the scheduler
# hands such partial last query blocks out after every full one (Sm90::kPartialLast). Every d64
# row on the 192-row tile has one (S512: 3 blocks of 192 for 512 rows, the third warpgroup of the
# last idle). Prediction (a greedy model of the tile counter, bench/NOTES.md session 26 item 6): the
# seed's H8 row +5-11%, H16 +3-6%, other d64 rows +1-3%. Correctness first (the Rust forward and
# inference-path GPU tests, `validate --full` over rows with partial blocks), then A B A B against
# the tree before (.stage/flashcore-prev, `scripts/gpu/build_at.sh f7606e7 prev`), with the
# reordering alone off. GPU machine after scripts/gpu/build.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s26-idle
timeout 120 .stage/gpu-tests --test-threads 1 --skip backward > "$log/s26-idle-tests.txt" 2>&1
echo "forward tests rc=$? $(grep -E '^test result' "$log/s26-idle-tests.txt")"
timeout 60 .stage/gpu-infer-tests --test-threads 1 >> "$log/s26-idle-tests.txt" 2>&1
echo "inference tests rc=$? $(grep -E '^test result' "$log/s26-idle-tests.txt" | tail -n 1)"
grep -A4 panicked "$log/s26-idle-tests.txt" | head -n 8
for o in seed-h8 d64-s1k d64-s512 s4097 sq4097 s17 s1000 bhsd pack; do
  timeout 60 .stage/flashcore validate --full --only "$o" 2>&1 | grep -E " pass | FAIL |rror"
done > "$log/s26-idle-validate.txt" 2>&1
echo "validate: $(grep -c ' pass ' "$log/s26-idle-validate.txt") pass, $(grep -c -v ' pass ' "$log/s26-idle-validate.txt") other"
grep -v ' pass ' "$log/s26-idle-validate.txt" | head -n 4
pack
C="base@.stage/flashcore-prev: new: nolast:FLASHCORE_SM90_PARTIAL_LAST=0"
CONFIGS=$C SUITE=seed ITERS=20 ONLY="seed-h8 seed-h16" timeout 60 scripts/gpu/ab.sh > "$log/s26-idle-ab.txt" 2>&1
pack
CONFIGS=$C SUITE=fa ITERS=20 ONLY="d64-s512 d64-s1k d64-s2k d64-s4k d64-s16k" timeout 200 scripts/gpu/ab.sh >> "$log/s26-idle-ab.txt" 2>&1
sort -s -k3,3 "$log/s26-idle-ab.txt"
pack
