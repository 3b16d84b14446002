#!/usr/bin/env bash
# Session 27, first call: the Python suites beside SDPA with the committed tree (session 26's idle
# warpgroups were measured in the CLI only), then the seed's H8 row (the one forward row under
# cuDNN) on tile / schedule knobs (AB: ab.sh CONFIGS), A B A B in the CLI, then SUITES2.
# SUITES="seed:70 fa:170" (suite:seconds).
# PYTEST: Python GPU test files after them. Everything (logs, JSON) is packed into $OUT/s27-first.tgz after each step.
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s27-first
install_wheel || exit 1
suites() {
for s in $1; do
  suite=${s%%:*}
  json="$log/$day-$gpu-s27-python-$suite.json"
  timeout "${s#*:}" python3 -m flashcore bench --suite "$suite" --json "$json" > "$log/python-$suite.log" 2>&1
  echo "bench $suite rc=$?"
  [ -f "$json" ] && python3 scripts/gpu/ratios.py "$json" | head -40
  pack
done
}
suites "${SUITES:-seed:70 fa:170}"
if [ -n "${AB:-}" ]; then
  CONFIGS="$AB" ONLY="${AB_ONLY:-seed-h8 seed-h16}" SUITE=seed ITERS=30 bash scripts/gpu/ab.sh > "$log/seed-ab.txt" 2>&1
  cat "$log/seed-ab.txt"
  pack
fi
[ -n "${SUITES2:-}" ] && suites "$SUITES2"
# PYTEST="python/tests/FILE ...": those Python GPU tests, after the suites.
if [ -n "${PYTEST:-}" ]; then
  timeout "${PYTEST_S:-200}" python3 -m pytest -p no:cacheprovider -q $PYTEST -m gpu -ra > "$log/py-gpu-tests.txt" 2>&1
  echo "Python GPU tests rc=$? $(tail -n 1 "$log/py-gpu-tests.txt")"
  grep -E "^FAILED|^ERROR" "$log/py-gpu-tests.txt" | head
  pack
fi
