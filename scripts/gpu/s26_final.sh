#!/usr/bin/env bash
# Session 26's checks of the short causal d64 tile (64x64 at three CTAs per SM, the planner's
# default now) and its numbers beside SDPA. PART=1: the Rust GPU tests (dense, FP8, backward;
# inference paths), `validate --full` over the rows that run the new tile or its neighbours,
# compute-sanitizer (memcheck, racecheck, synccheck) on two small rows that run it (odd length with
# GQA; bottom-right Sq < Sk in BHSD), and Nsight Compute's occupancy of one d64 S512 causal launch.
# PART=2: the Python `fa` and `seed` suites in one process each beside SDPA's backends, then every
# Python GPU test. Logs packed into $OUT/s26-final-N.tgz, JSON beside them.
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs "s26-final-${PART:-1}"
if [ "${PART:-1}" = 1 ]; then
  rust_gpu_checks
  pack
  for o in d64 seed gqa32-8-s1000 bhsd pack s1 sq4097; do
    timeout 90 .stage/flashcore validate --full --only "$o" 2>&1 | grep -E " pass | FAIL |rror"
  done > "$log/validate.txt" 2>&1
  echo "validate: $(grep -c ' pass ' "$log/validate.txt") pass, $(grep -c -v ' pass ' "$log/validate.txt") other"
  grep -v ' pass ' "$log/validate.txt" | head -n 5
  pack
  for row in gqa32-8-s1000-d64 bhsd-sq77-sk300-br; do
    for tool in memcheck racecheck synccheck; do
      timeout 90 compute-sanitizer --tool "$tool" .stage/flashcore validate --full --only "$row" > "$log/sanitizer-$tool-$row.txt" 2>&1
      echo "$tool $row rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log/sanitizer-$tool-$row.txt" | tail -n 1) $(grep -cE ' pass ' "$log/sanitizer-$tool-$row.txt") pass"
    done
  done
  pack
  timeout 120 ncu --section Occupancy --section LaunchStats -k regex:fc_fwd_sm90 -c 1 \
    .stage/flashcore bench --only d64-s512-causal --iters 1 > "$log/ncu-occupancy.txt" 2>&1
  echo "ncu rc=$?"
  grep -E "Block Limit|Occupancy|Grid Size|Registers Per|Shared Memory Config|Dynamic Shared" "$log/ncu-occupancy.txt" | head -n 14
  pack
else
  install_wheel || exit 1
  for s in fa:170 seed:70; do
    suite=${s%%:*}
    timeout "${s#*:}" python3 -m flashcore bench --suite "$suite" --json "$out/$day-$gpu-s26-final-python-$suite.json" \
      > "$log/python-$suite.log" 2>&1
    echo "bench $suite rc=$?"
    pack
  done
  timeout 240 python3 -m pytest -p no:cacheprovider -q python/tests -m gpu -ra > "$log/py-gpu-tests.txt" 2>&1
  echo "Python GPU tests rc=$? $(tail -n 1 "$log/py-gpu-tests.txt")"
  grep -E "^FAILED|^ERROR" "$log/py-gpu-tests.txt" | head
  pack
fi
