#!/usr/bin/env bash
# Session 9's closing device call (after scripts/gpu/build.sh and build_wheel.sh; carry .stage):
# the Python benches beside SDPA first (fa, long), then the Python GPU tests, the inference paths
# and `validate --quick`, each bounded; logs and JSON in $OUT. The Rust GPU tests ran on the same
# build in scripts/gpu/cluster_tune.sh.
set -uo pipefail
. scripts/gpu/env.sh
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" || exit 1
for suite in fa long; do
  timeout 190 python3 -m flashcore bench --suite $suite --json "$out/$day-$gpu-s9-python-$suite.json" > "$out/bench-$suite.log" 2>&1
  echo "bench $suite rc=$?"
done
timeout 200 python3 -m pytest -p no:cacheprovider -q python/tests -m gpu -ra > "$out/py-gpu-tests.log" 2>&1; echo "pytest rc=$?"
tail -n 2 "$out/py-gpu-tests.log"
timeout 60 .stage/gpu-infer-tests --test-threads 1 > "$out/infer.log" 2>&1; echo "infer rc=$?"; tail -n 2 "$out/infer.log"
timeout 60 .stage/flashcore validate --quick > "$out/validate-quick.log" 2>&1; echo "validate rc=$?"; tail -n 3 "$out/validate-quick.log"
