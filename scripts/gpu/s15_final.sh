#!/usr/bin/env bash
# Session 15's checks on the committed tree (GPU machine, after build.sh and build_wheel.sh):
# MODE=tests: the Rust GPU tests, the inference-path tests, the Python backward validation and the
# backward bench beside SDPA's backends in one process (run_python.sh bwd);
# MODE=py: the Rust GPU and inference-path tests again, the Python GPU tests, the deterministic
# backward's cost (CLI bench with FLASHCORE_BENCH_DETERMINISTIC=1) and compute-sanitizer on a
# non-causal d128 backward row (80-row tile).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
if [ "${MODE:-tests}" = tests ]; then
  {
    timeout 220 .stage/gpu-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked"
    timeout 120 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked"
  } > "$out/s15-final-tests.txt" 2>&1
  grep -E "test result|FAIL|panicked" "$out/s15-final-tests.txt"
  OUT=$out timeout 330 scripts/gpu/run_python.sh bwd > "$out/s15-final-python-bwd.txt" 2>&1
  grep -E "bwd-|rows" "$out/s15-final-python-bwd.txt" | tail -40
else
  {
    timeout 220 .stage/gpu-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked"
    timeout 120 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked"
  } > "$out/s15-final2-tests.txt" 2>&1
  grep -E "test result|FAIL|panicked" "$out/s15-final2-tests.txt"
  OUT=$out timeout 260 scripts/gpu/run_python.sh tests -q ${PYTEST_ARGS:-} > "$out/s15-final-python-tests.txt" 2>&1
  tail -2 "$out/s15-final-python-tests.txt"
  # The deterministic mode's cost beside the default path (it keeps 64-row steps at d96 / d128).
  for det in 0 1; do
    for s in "bwd bwd-d128-s4k" "bwd bwd-d64-s1k" "bwd-long bwd-d96-s4k"; do
      set -- $s
      FLASHCORE_BENCH_DETERMINISTIC=$det timeout 60 .stage/flashcore bench --suite "$1" --only "$2" --iters 20 2>&1 \
        | grep -E " pass | FAIL " | sed "s/^/det=$det /"
    done
  done | tee "$out/s15-final-det.txt"
  for tool in ${TOOLS-memcheck racecheck}; do
    timeout 120 compute-sanitizer --tool "$tool" .stage/flashcore validate --full --only bwd-mqa16-1-s1k \
      > "$out/s15-final-$tool.txt" 2>&1
    echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/s15-final-$tool.txt" | tail -n 1)"
  done
fi
