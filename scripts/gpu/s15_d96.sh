#!/usr/bin/env bash
# Session 15: the Hopper backward at head dim 96 (dQ transposed, the 80-row tile's path) on the GPU
# machine after build.sh and build_wheel.sh: the backward GPU tests, `validate --full` over every
# backward row, compute-sanitizer on the d96 edge row, the d96 bench rows A B A B on the portable
# kernel (FLASHCORE_SM90_BWD=0), the Hopper kernel at 64 rows and the planner's choice, then the
# d96 rows beside SDPA's backends in one Python process. Logs go to $OUT; a summary is printed.
set -uo pipefail
. "$(dirname "$0")/env.sh"
export FLASHCORE_CACHE_DIR=/tmp/fc
bwd_warm_and_test s15-d96
timeout 200 .stage/flashcore validate --full --only bwd- > "$out/s15-d96-validate.log" 2>&1
echo "validate rc=$? $(tail -n 1 "$out/s15-d96-validate.log")"
for tool in memcheck racecheck synccheck; do
  timeout 100 compute-sanitizer --tool "$tool" .stage/flashcore validate --full --only bwd-s77-d96 > "$out/s15-d96-$tool.log" 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/s15-d96-$tool.log" | tail -n 1)"
done
SUITE=bwd-long CONFIGS="sm80:FLASHCORE_SM90_BWD=0 r64:FLASHCORE_SM90_BWD_TILE=64 auto:" ONLY=bwd-d96 \
  bash "$(dirname "$0")/ab.sh" | tee "$out/s15-d96-ab.txt"
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" > /dev/null 2>&1
timeout 200 python3 -m flashcore bench --suite bwd-long --only bwd-d96 --json "$out/s15-d96-python-bwd.json" \
  > "$out/s15-d96-python-bwd.txt" 2>&1
grep -E "bwd-d96" "$out/s15-d96-python-bwd.txt"
