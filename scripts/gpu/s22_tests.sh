#!/usr/bin/env bash
# Session 22's last call: the Rust backward GPU tests on the committed tree with zeroing and
# conversion forced onto every grid row after the first, the many-rows test at the planner's lags,
# and the Python backward GPU tests. GPU machine after scripts/gpu/build.sh and
# build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s22-tests
install_wheel || exit 1
lag1="FLASHCORE_SM90_BWD_ZERO_LAG=1 FLASHCORE_SM90_BWD_CONVERT_LAG=1"
env $lag1 timeout 200 .stage/gpu-tests --test-threads 1 backward > "$log/tests-lag1.txt" 2>&1
echo "backward tests, lag 1: rc=$? $(grep -E '^test result' "$log/tests-lag1.txt")"
grep -A4 panicked "$log/tests-lag1.txt" | head -n 10
pack
timeout 60 .stage/gpu-tests --test-threads 1 many_rows > "$log/tests-auto.txt" 2>&1
echo "many-rows test, planner's lags: rc=$? $(grep -E '^test result' "$log/tests-auto.txt")"
timeout 100 python3 -m pytest -p no:cacheprovider python/tests/test_gpu_backward.py -m gpu -q -x > "$log/py-gpu.txt" 2>&1
echo "python backward GPU tests rc=$? $(tail -n 1 "$log/py-gpu.txt")"
pack
