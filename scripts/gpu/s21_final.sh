#!/usr/bin/env bash
# Session 21's closing runs with dQ converted in the Hopper backward's main kernel by default
# (non-causal d64 / d128, kernels/sm90/bwd_convert.cuh): the backward suite beside torch SDPA's
# backends in one process (issue 6's ratios), the Python backward GPU tests, the Rust backward GPU
# tests with the conversion forced onto every grid row after the first
# (FLASHCORE_SM90_BWD_CONVERT_LAG=1) and at the planner's lag, and memcheck at lag 1.
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
install_wheel || exit 1
timeout 170 python3 -m flashcore bench --suite bwd --json "$out/$day-$gpu-s21-final-python-bwd.json" \
  > "$out/s21-final-python-bwd.log" 2>&1
echo "bench bwd rc=$?"
grep -E "^bwd-" "$out/s21-final-python-bwd.log" | grep -E "flashcore|sdpa_cudnn" | awk '{print $1, $2, $4}' | paste - - | awk '{printf "%-24s %7s %7s %.3f\n", $1, $3, $6, $3 / $6}'
packed_logs s21-final
timeout 120 python3 -m pytest -p no:cacheprovider python/tests/test_gpu_backward.py -m gpu -q -x > "$log/py-gpu-backward.txt" 2>&1
echo "python backward GPU tests rc=$? $(tail -n 1 "$log/py-gpu-backward.txt")"
pack
FLASHCORE_SM90_BWD_CONVERT_LAG=1 timeout 200 .stage/gpu-tests --test-threads 1 backward > "$log/rust-bwd-lag1.txt" 2>&1
echo "rust backward tests, lag 1: rc=$? $(grep -E '^test result' "$log/rust-bwd-lag1.txt")"
grep -A4 panicked "$log/rust-bwd-lag1.txt" | head -n 10
timeout 60 .stage/gpu-tests --test-threads 1 many_rows > "$log/rust-many-rows.txt" 2>&1
echo "many-rows test: rc=$? $(grep -E '^test result' "$log/rust-many-rows.txt")"
pack
FLASHCORE_SM90_BWD_CONVERT_LAG=1 timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 \
  .stage/flashcore validate --full --only bwd-d64-s4k > "$log/memcheck-bwd-d64-s4k.txt" 2>&1
echo "memcheck bwd-d64-s4k rc=$? $(grep -E 'ERROR SUMMARY' "$log/memcheck-bwd-d64-s4k.txt") $(tail -n 1 "$log/memcheck-bwd-d64-s4k.txt")"
pack
