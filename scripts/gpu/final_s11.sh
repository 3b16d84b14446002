#!/usr/bin/env bash
# Session 11's closing device call (after scripts/gpu/build.sh and build_wheel.sh; carry .stage):
# the checks of scripts/gpu/s11_sections.sh (Rust GPU tests, inference paths, validate --quick,
# `flashcore fp8`) and the Python GPU tests, then the Python benches beside SDPA (fa, seed, gqa,
# long; flashcore is called without grad, so without an LSE, as the SDPA backends are), each
# bounded; logs and JSON in $OUT.
#   PART=tests|bench (default: both)
set -uo pipefail
. scripts/gpu/env.sh
part=${PART:-all}
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" || exit 1
if [[ $part == all || $part == tests ]]; then
  PART=tests bash scripts/gpu/s11_sections.sh
  timeout 170 python3 -m pytest -p no:cacheprovider -q python/tests -m gpu -ra > "$out/py-gpu-tests.log" 2>&1; echo "pytest rc=$?"
  tail -n 2 "$out/py-gpu-tests.log"
fi
[[ $part == all || $part == bench ]] || exit 0
for suite in fa seed gqa long; do
  timeout 170 python3 -m flashcore bench --suite $suite --json "$out/$day-$gpu-s11-python-$suite.json" > "$out/bench-$suite.log" 2>&1
  echo "bench $suite rc=$?"
done
