#!/usr/bin/env bash
# Session 10's closing device call (after scripts/gpu/build.sh and build_wheel.sh; carry .stage):
# the Python benches beside SDPA (fa, seed, gqa, long; flashcore is called without grad, so without
# an LSE, as the SDPA backends are), then the Python GPU tests and `flashcore fp8` (the FP8
# defaults against the naive FP8 bar), each bounded; logs and JSON in $OUT. The Rust GPU tests,
# inference paths and `validate --quick` ran on the same 16-bit kernels in scripts/gpu/s10_summma.sh.
set -uo pipefail
. scripts/gpu/env.sh
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" || exit 1
for suite in fa seed gqa long; do
  timeout 170 python3 -m flashcore bench --suite $suite --json "$out/$day-$gpu-s10-python-$suite.json" > "$out/bench-$suite.log" 2>&1
  echo "bench $suite rc=$?"
done
timeout 170 python3 -m pytest -p no:cacheprovider -q python/tests -m gpu -ra > "$out/py-gpu-tests.log" 2>&1; echo "pytest rc=$?"
tail -n 2 "$out/py-gpu-tests.log"
timeout 70 .stage/flashcore fp8 > "$out/fp8-validate.log" 2>&1; echo "fp8 validate rc=$?"; grep -c " ok " "$out/fp8-validate.log"; grep FAIL "$out/fp8-validate.log" | head -5
