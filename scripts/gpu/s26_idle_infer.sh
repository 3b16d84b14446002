#!/usr/bin/env bash
# Session 26, last call: the inference-path GPU tests (softcap, window, varlen, paged, split) with
# the idle-warpgroup build as committed (dense variants only; the partial-last reordering taken out),
# which the previous call's 60-second limit cut short while its cold kernel cache compiled. GPU
# machine after scripts/gpu/build.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s26-idle-infer
timeout 170 .stage/gpu-infer-tests --test-threads 1 > "$log/s26-idle-infer-tests.txt" 2>&1
echo "inference tests rc=$? $(grep -E '^test result' "$log/s26-idle-infer-tests.txt" | tail -n 1)"
grep -A4 panicked "$log/s26-idle-infer-tests.txt" | head -n 8
pack
