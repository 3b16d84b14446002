#!/usr/bin/env bash
# Session 25: the checks the H200 had not run yet (session 24's closing note): the Rust
# inference-path GPU tests, the Rust FP8 GPU test, and the Python inference and FP8 GPU tests,
# with the committed tree's build. GPU machine after scripts/gpu/build.sh and build_wheel.sh
# (carry .stage). Logs packed into $OUT/s25-infer.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
install_wheel || exit 1
packed_logs s25-infer
timeout 150 .stage/gpu-infer-tests --test-threads 1 > "$log/rust-infer-tests.log" 2>&1
echo "rust infer rc=$? $(grep 'test result' "$log/rust-infer-tests.log")"
timeout 100 .stage/gpu-tests --test-threads 1 fp8 > "$log/rust-fp8-tests.log" 2>&1
echo "rust fp8 rc=$? $(grep 'test result' "$log/rust-fp8-tests.log")"
pack
timeout 170 python3 -m pytest -p no:cacheprovider python/tests/test_gpu_infer.py python/tests/test_fp8.py -m gpu -q \
  > "$log/py-infer-fp8-tests.log" 2>&1
echo "py infer+fp8 rc=$? $(tail -n 1 "$log/py-infer-fp8-tests.log")"
pack
