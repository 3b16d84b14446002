#!/usr/bin/env bash
# Session 16's checks on the committed tree (GPU machine, after build.sh and build_wheel.sh):
# MODE=bwd: the Python backward validation and the backward bench beside SDPA's backends in one
# process (run_python.sh bwd); MODE=tests: the inference-path GPU tests and the Python GPU tests.
# (The Rust GPU tests ran on this tree in scripts/gpu/s16_stsm_fwd.sh.) MODE=py2: below.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
if [ "${MODE:-bwd}" = bwd ]; then
  OUT=$out timeout 420 scripts/gpu/run_python.sh bwd > "$out/s16-final-python-bwd.txt" 2>&1
  grep -E "bwd-|rows" "$out/s16-final-python-bwd.txt" | grep -v Warning | tail -60
elif [ "${MODE:-bwd}" = tests ]; then
  timeout 120 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked" > "$out/s16-final-infer-tests.txt"
  grep -E "test result|FAIL|panicked" "$out/s16-final-infer-tests.txt"
  OUT=$out timeout 300 scripts/gpu/run_python.sh tests -q > "$out/s16-final-python-tests.txt" 2>&1
  tail -2 "$out/s16-final-python-tests.txt"
fi
# MODE=py2 (after the conftest bar fix): the Python GPU tests again, and Nsight Compute stall samples
# of the D128 S4K backward's main kernel (80-row tile) for the next session.
if [ "${MODE:-bwd}" = py2 ]; then
  OUT=$out timeout 300 scripts/gpu/run_python.sh tests -q > "$out/s16-final-python-tests2.txt" 2>&1
  tail -2 "$out/s16-final-python-tests2.txt"
  timeout 150 ncu --set full --import-source no -k regex:fc_bwd_sm90 -s 2 -c 1 -o /tmp/s16-bwd128 -f \
    .stage/flashcore bench --suite bwd --only bwd-d128-s4k --iters 2 > "$out/s16-ncu-bwd128-run.txt" 2>&1
  echo "ncu rc=$?"
  python3 scripts/gpu/ncu_stalls.py /tmp/s16-bwd128.ncu-rep 45 > "$out/s16-ncu-bwd128-stalls.txt" 2>&1
  ncu -i /tmp/s16-bwd128.ncu-rep --page source --csv --print-source sass 2>/dev/null | gzip > "$out/s16-ncu-bwd128-source.csv.gz"
  ncu -i /tmp/s16-bwd128.ncu-rep --page details 2>/dev/null \
    | grep -E "Duration|Throughput|Tensor|Issue|Ipc|Hit Rate|Occupancy|Registers" > "$out/s16-ncu-bwd128-summary.txt"
  head -n 16 "$out/s16-ncu-bwd128-stalls.txt"
fi
