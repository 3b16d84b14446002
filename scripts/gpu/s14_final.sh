#!/usr/bin/env bash
# Session 14's final checks on the committed tree: Rust GPU tests, inference-path tests, the FP8
# validation rows and the Python GPU tests. GPU machine after build.sh and build_wheel.sh.
set -uo pipefail
. scripts/gpu/env.sh
{
  timeout 200 .stage/gpu-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked"
  timeout 120 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked"
  timeout 100 .stage/flashcore fp8 2>&1 | tail -3
} > $out/s14-final-tests.txt 2>&1
grep -E "test result|FAIL|panicked|rows" $out/s14-final-tests.txt
OUT=$out timeout 200 scripts/gpu/run_python.sh tests -q ${PYTEST_ARGS:-} > $out/s14-final-python-tests.txt 2>&1
tail -3 $out/s14-final-python-tests.txt
