#!/usr/bin/env bash
# Session 18's closing run on the committed tree (GPU machine, after build.sh and build_wheel.sh;
# carry .stage): the forward suites (issue 5) and FP8 (issue 7) beside torch SDPA's backends, one
# process per suite, then the inference-path and forward GPU tests. Logs and JSON in $OUT, packed.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s18-final
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" || exit 1
bench() {  # suite, time limit
  timeout "$2" python3 -m flashcore bench --suite "$1" --json "$log/$day-$gpu-s18-final-python-$1.json" \
    > "$log/s18-final-python-$1.log" 2>&1
  echo "bench $1 rc=$?"
}
{
  timeout 100 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked"
  timeout 120 .stage/gpu-tests --test-threads 1 --skip backward 2>&1 | grep -E "^test |test result|panicked"
} > "$log/s18-final-rust-tests.txt"
grep -E "test result|panicked" "$log/s18-final-rust-tests.txt"
pack
for s in "fa 150" "seed 60" "gqa 60" "long 120" "fp8 100"; do
  bench $s
  pack
done
