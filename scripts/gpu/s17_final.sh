#!/usr/bin/env bash
# Session 17's closing runs on the committed tree (GPU machine, after build.sh and build_wheel.sh;
# carry .stage): every issue's bench beside torch SDPA's backends in one process per suite, so the
# closing notes quote one tree. Each suite bounded; logs and JSON in $OUT.
#   PART=fwd   the forward suites (fa, seed, gqa, long: issue 5)
#   PART=rest  the backward (issue 6), decode and varlen (issue 8), FP8 (issue 7), then the Rust GPU
#              tests and the inference-path tests
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" || exit 1
bench() {  # suite, time limit
  timeout "$2" python3 -m flashcore bench --suite "$1" --json "$out/$day-$gpu-s17-final-python-$1.json" \
    > "$out/s17-final-python-$1.log" 2>&1
  echo "bench $1 rc=$?"
}
if [ "${PART:-fwd}" = fwd ]; then
  bench fa 200
  bench seed 90
  bench gqa 90
  bench long 150
else
  bench bwd 150
  bench decode 90
  bench varlen 90
  bench fp8 120
  timeout 150 .stage/gpu-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked" > "$out/s17-final-rust-tests.txt"
  grep -E "test result" "$out/s17-final-rust-tests.txt"
  timeout 100 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked" >> "$out/s17-final-rust-tests.txt"
  grep -E "test result" "$out/s17-final-rust-tests.txt" | tail -n 1
fi
