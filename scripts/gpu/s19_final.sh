#!/usr/bin/env bash
# Session 19's closing checks on the committed tree (GPU machine, after build.sh and
# build_wheel.sh; carry .stage): the Rust GPU tests (forward, FP8, backward), the inference-path
# GPU tests, and the Python GPU tests. Logs packed into $OUT/s19-final.tgz after every step.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s19-final
{
  timeout 100 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E -A8 "^test |test result|panicked"
  timeout 240 .stage/gpu-tests --test-threads 1 2>&1 | grep -E -A8 "^test |test result|panicked"
} > "$log/s19-final-rust-tests.txt" 2>&1
grep -E "test result|panicked" "$log/s19-final-rust-tests.txt"
pack
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" || exit 1
timeout 240 python3 -m pytest -p no:cacheprovider -q python/tests -m gpu -ra > "$log/s19-final-python-tests.txt" 2>&1
echo "pytest rc=$?"
tail -n 3 "$log/s19-final-python-tests.txt"
pack
