#!/usr/bin/env bash
# Session 31: the Python FP8 suite beside our bf16 kernel in one process (kernels unchanged since
# session 19; a second H200 sample after session 27's), printed as it goes.
# GPU machine after scripts/gpu/build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
use_staged_cache
packed_logs s31-fp8-suite
install_wheel
timeout 300 python3 -m flashcore bench --suite fp8 --json "$log/python-fp8.json" 2>&1 | tee "$log/python-fp8.log"
pack
