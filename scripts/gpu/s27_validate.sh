#!/usr/bin/env bash
# Session 27: `flashcore validate --full` over every row (forward, long and huge, edge, backward)
# with the committed kernels, first on the H200 since session 24 (whose run stopped at its limit in
# the backward rows). Log packed into $OUT/s27-validate.tgz as it goes.
# GPU machine after scripts/gpu/build.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s27-validate
timeout "${LIMIT:-480}" .stage/flashcore validate --full > "$log/validate-full.txt" 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null; do sleep 20; pack; done
wait $pid
echo "validate --full rc=$? $(grep -cE ' pass ' "$log/validate-full.txt") pass, $(grep -cE ' FAIL ' "$log/validate-full.txt") FAIL"
grep -E ' FAIL |rror' "$log/validate-full.txt" | head -n 5
tail -n 3 "$log/validate-full.txt"
pack
