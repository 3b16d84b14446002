#!/usr/bin/env bash
# Whole-tree check on the GPU machine after scripts/gpu/build.sh and build_wheel.sh staged .stage/
# (carry `.stage`): Rust GPU tests (dense + FP8, inference paths on both kernels), every Python GPU
# test, the quick validation, and Python benches beside SDPA in one process each (BENCHES, default
# "fa": the forward rows, a regression check of the dense kernels after a merge; also "decode", "bwd",
# "varlen"), each bounded by BENCH_TIMEOUT seconds. Logs and JSON go to $OUT (or ./out).
set -uo pipefail
# shellcheck source=scripts/gpu/env.sh
. "$(dirname "$0")/env.sh"
rc=0
step() { echo "== $1"; shift; "$@" > "$out/$log.log" 2>&1 || rc=1; tail -n 3 "$out/$log.log"; }
log=rust-gpu-tests step "Rust GPU tests" .stage/gpu-tests --test-threads 1
log=rust-gpu-infer step "inference paths, planner's kernel" .stage/gpu-infer-tests --test-threads 1
log=rust-gpu-infer-sm80 step "inference paths, portable kernel" env FLASHCORE_FORCE_SM80=1 .stage/gpu-infer-tests --test-threads 1
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" || exit 1
log=py-gpu-tests step "Python GPU tests" python3 -m pytest -p no:cacheprovider -q python/tests -m gpu -ra
log=validate-quick step "validate --quick" .stage/flashcore validate --quick --json "$out/validate-quick.json"
for suite in ${BENCHES:-fa}; do
  log=bench-$suite step "bench $suite" timeout "${BENCH_TIMEOUT:-200}" \
    python3 -m flashcore bench --suite "$suite" --json "$out/$day-$gpu-python-$suite.json"
done
exit $rc
