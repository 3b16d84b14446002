#!/usr/bin/env bash
# Session 24: the lent device is now an H200 (same Hopper chip as the H100, HBM3e at 4.8 TB/s), so
# every issue's standing is measured again there: each suite beside torch SDPA's backends (FP8
# beside our bf16) in one process, JSON per suite, and the ratios printed by scripts/gpu/ratios.py.
#   SUITES="fa:150 seed:60 gqa:60" scripts/gpu/s24_baseline.sh     (suite:time limit in seconds)
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
tag=${TAG:-s24-baseline}
install_wheel || exit 1
for s in ${SUITES:?}; do
  suite=${s%%:*}
  json="$out/$day-$gpu-$tag-python-$suite.json"
  timeout "${s#*:}" python3 -m flashcore bench --suite "$suite" --json "$json" > "$out/$tag-python-$suite.log" 2>&1
  echo "bench $suite rc=$?"
  [ -f "$json" ] && python3 scripts/gpu/ratios.py "$json"
done
