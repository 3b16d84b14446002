#!/usr/bin/env bash
# Session 16's checks on the committed tree (GPU machine, after build.sh and build_wheel.sh):
# MODE=bwd: the Python backward validation and the backward bench beside SDPA's backends in one
# process (run_python.sh bwd); MODE=tests: the inference-path GPU tests and the Python GPU tests.
# (The Rust GPU tests ran on this tree in scripts/gpu/s16_stsm_fwd.sh.)
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
if [ "${MODE:-bwd}" = bwd ]; then
  OUT=$out timeout 420 scripts/gpu/run_python.sh bwd > "$out/s16-final-python-bwd.txt" 2>&1
  grep -E "bwd-|rows" "$out/s16-final-python-bwd.txt" | grep -v Warning | tail -60
else
  timeout 120 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked" > "$out/s16-final-infer-tests.txt"
  grep -E "test result|FAIL|panicked" "$out/s16-final-infer-tests.txt"
  OUT=$out timeout 300 scripts/gpu/run_python.sh tests -q > "$out/s16-final-python-tests.txt" 2>&1
  tail -2 "$out/s16-final-python-tests.txt"
fi
