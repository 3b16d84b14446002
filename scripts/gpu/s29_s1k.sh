#!/usr/bin/env bash
# Session 29's one call (about four minutes of device time were left): the backward suite's S1K rows
# beside SDPA's backends in the same process, with session 28's prep pass (8 query rows per warp);
# a second pass only while the time guard allows. JSON and logs packed into $OUT/s29-s1k.tgz.
# GPU machine after scripts/gpu/build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
packed_logs s29-s1k
install_wheel || exit 1
for pass in 1 2; do
  left=$(( ${BUDGET_S:-140} - SECONDS ))
  [ "$left" -lt 40 ] && { echo "pass $pass skipped: ${left}s left"; break; }
  json="$log/$day-$gpu-s29-python-bwd-s1k-$pass.json"
  timeout "$left" python3 -m flashcore bench --suite bwd --only s1k --json "$json" > "$log/python-bwd-s1k-$pass.log" 2>&1
  echo "pass $pass rc=$? at ${SECONDS}s"
  [ -f "$json" ] && python3 scripts/gpu/ratios.py "$json"
  pack
done
