#!/usr/bin/env bash
# Issue 8 on the GPU machine, from the repo root, after scripts/gpu/build.sh and build_wheel.sh staged
# .stage/ (pass `.stage` in the device tool's `carry`): the Rust GPU tests (dense, then the inference
# paths on the planner's kernel and on the portable one), the Python GPU tests of the inference paths,
# and the Python decode / varlen benches (flashcore beside torch SDPA's backends, one process).
# Logs and JSON go to $OUT (or ./out).
set -uo pipefail
# shellcheck source=scripts/gpu/env.sh
. "$(dirname "$0")/env.sh"
rc=0
.stage/gpu-tests --test-threads 1 > "$out/rust-gpu-tests.log" 2>&1 || rc=1
tail -n 3 "$out/rust-gpu-tests.log"
.stage/gpu-infer-tests --test-threads 1 > "$out/rust-gpu-infer.log" 2>&1 || rc=1
tail -n 3 "$out/rust-gpu-infer.log"
FLASHCORE_FORCE_SM80=1 .stage/gpu-infer-tests --test-threads 1 > "$out/rust-gpu-infer-sm80.log" 2>&1 || rc=1
tail -n 3 "$out/rust-gpu-infer-sm80.log"
whl=$(ls .stage/flashcore-*.whl | head -n 1)
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$whl" || exit 1
python3 -m pytest -p no:cacheprovider -q python/tests/test_gpu_infer.py python/tests/test_infer.py -m gpu -ra \
  > "$out/py-gpu-infer.log" 2>&1 || rc=1
tail -n 5 "$out/py-gpu-infer.log"
for s in decode varlen; do
  python3 -m flashcore bench --suite $s --json "$out/$day-$gpu-python-$s.json" > "$out/bench-$s.log" 2>&1 || rc=1
  tail -n 25 "$out/bench-$s.log"
done
exit $rc
