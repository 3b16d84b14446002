#!/usr/bin/env bash
# Session 22, third call: the kept zeroing design (E: the zeroing warps store after K and V landed;
# the producer acquires its row's zeros before step 0's loads) with the prep kernel's loads of
# every pass issued before its arithmetic, against D (.stage/flashcore-D, build of 0253bd3: the old
# prep) and the prep kernel zeroing (FLASHCORE_SM90_BWD_ZERO=0): A B C A B C on the backward rows;
# the per-kernel split (bwd_split_probe.py, the wheel built from E); then the Rust backward GPU
# tests with zeroing and conversion on every grid row after the first (..._ZERO_LAG=1,
# ..._CONVERT_LAG=1), the many-rows test at the planner's lags, and the Python backward GPU tests.
# GPU machine after scripts/gpu/build.sh, build_wheel.sh (carry .stage). Logs in $OUT/$TAG.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
tag=${TAG:-s22-zero-ab2}
packed_logs "$tag"
CONFIGS="prep:FLASHCORE_SM90_BWD_ZERO=0 D@.stage/flashcore-D: E:" SUITE=bwd ITERS=20 \
  ONLY="${ONLY:-bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k bwd-d64-s4k}" scripts/gpu/ab.sh > "$log/ab.txt" 2>&1
sort -s -k3,3 "$log/ab.txt"
pack
install_wheel || exit 1
timeout 120 python3 scripts/gpu/bwd_split_probe.py bwd-d128-s1k bwd-d64-s1k-causal > "$log/split.txt" 2>&1
grep -E "===|flashcore" "$log/split.txt"
pack
lag1="FLASHCORE_SM90_BWD_ZERO_LAG=1 FLASHCORE_SM90_BWD_CONVERT_LAG=1"
env $lag1 timeout 240 .stage/gpu-tests --test-threads 1 backward > "$log/tests-lag1.txt" 2>&1
echo "backward tests, lag 1: rc=$? $(grep -E '^test result' "$log/tests-lag1.txt")"
grep -A4 panicked "$log/tests-lag1.txt" | head -n 10
pack
timeout 100 .stage/gpu-tests --test-threads 1 many_rows > "$log/tests-auto.txt" 2>&1
echo "many-rows test, planner's lags: rc=$? $(grep -E '^test result' "$log/tests-auto.txt")"
timeout 150 python3 -m pytest -p no:cacheprovider python/tests/test_gpu_backward.py -m gpu -q -x > "$log/py-gpu-backward.txt" 2>&1
echo "python backward GPU tests rc=$? $(tail -n 1 "$log/py-gpu-backward.txt")"
pack
