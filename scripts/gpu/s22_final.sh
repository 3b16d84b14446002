#!/usr/bin/env bash
# Session 22's closing runs with the dQ accumulator zeroed in the Hopper backward's main kernel by
# default (kernels/sm90/bwd_zero.cuh): the backward suite beside torch SDPA's backends in one
# process (issue 6's ratios), `validate --full` on the backward rows, and memcheck / racecheck /
# synccheck with zeroing and conversion on every grid row after the first.
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s22-final
install_wheel || exit 1
timeout 200 python3 -m flashcore bench --suite bwd --json "$out/$day-$gpu-s22-final-python-bwd.json" \
  > "$out/s22-final-python-bwd.log" 2>&1
echo "bench bwd rc=$?"
grep -E "^bwd-" "$out/s22-final-python-bwd.log" | grep -E "flashcore|sdpa_cudnn" | awk '{print $1, $2, $4}' | paste - - | awk '{printf "%-24s %7s %7s %.3f\n", $1, $3, $6, $3 / $6}'
timeout 150 .stage/flashcore validate --full --only bwd- > "$log/validate-bwd.txt" 2>&1
echo "validate --full bwd rc=$? $(tail -n 1 "$log/validate-bwd.txt")"
pack
lag1="FLASHCORE_SM90_BWD_ZERO_LAG=1 FLASHCORE_SM90_BWD_CONVERT_LAG=1"
for run in "memcheck bwd-sq4097-sk1000-br" "racecheck bwd-sq1000-sk4097-br" "synccheck bwd-sq4097-sk1000-br"; do
  set -- $run
  f="$log/$1-$2.txt"
  env $lag1 timeout 90 compute-sanitizer --tool "$1" --error-exitcode 9 .stage/flashcore validate --full --only "$2" > "$f" 2>&1
  echo "$1 $2 rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$f" | head -n 1) $(grep -E 'passed' "$f" | tail -n 1)"
  pack
done
