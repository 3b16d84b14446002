#!/usr/bin/env bash
# Session 24's closing checks, the first on an H200: PART=1 `validate --full` (every forward and
# backward row of the matrix against the f64 reference) and the GPT training step patched against
# torch's SDPA backends (bench/train_step.py); PART=2 the Rust GPU tests (dense, FP8, backward;
# inference paths on both kernels) and every Python GPU test. Logs packed into $OUT/s24-final-N.tgz,
# JSON beside them.
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs "s24-final-${PART:-1}"
install_wheel || exit 1
if [ "${PART:-1}" = 1 ]; then
  timeout 330 .stage/flashcore validate --full --json "$out/$day-$gpu-s24-final-validate.json" > "$log/validate-full.txt" 2>&1
  echo "validate --full rc=$? $(grep -E 'rows, .* passed' "$log/validate-full.txt" | tr '\n' ' ')"
  grep -E " FAIL " "$log/validate-full.txt" | head
  pack
  timeout 150 python3 bench/train_step.py --layers 4 --steps 6 --json "$out/$day-$gpu-s24-final-train-step.json" > "$log/train-step.txt" 2>&1
  echo "train step rc=$?"
  tail -n 8 "$log/train-step.txt"
  pack
else
  rust_gpu_checks
  FLASHCORE_FORCE_SM80=1 timeout 90 .stage/gpu-infer-tests --test-threads 1 > "$log/rust-infer-sm80.txt" 2>&1
  echo "inference-path tests, portable kernel rc=$? $(grep -E '^test result' "$log/rust-infer-sm80.txt")"
  pack
  timeout 240 python3 -m pytest -p no:cacheprovider -q python/tests -m gpu -ra > "$log/py-gpu-tests.txt" 2>&1
  echo "Python GPU tests rc=$? $(tail -n 1 "$log/py-gpu-tests.txt")"
  grep -E "^FAILED|^ERROR" "$log/py-gpu-tests.txt" | head
  pack
fi
