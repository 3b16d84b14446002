#!/usr/bin/env bash
# Session 25's closing run: the backward suite beside torch SDPA's backends in one process with the
# committed tree's wheel (the ratios to cuDNN for issue 6), then the Python backward GPU tests
# (autograd through the native backward). GPU machine after scripts/gpu/build.sh and
# build_wheel.sh (carry .stage). Logs packed into $OUT/s25-final.tgz, the bench JSON beside it.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s25-final
TAG=s25-final SUITES="bwd:240" OUT=$log bash scripts/gpu/s24_baseline.sh
cp "$log"/*.json "$out"/ 2>/dev/null
pack
timeout 200 python3 -m pytest -p no:cacheprovider python/tests/test_gpu_backward.py -m gpu -q -x > "$log/py-bwd-tests.log" 2>&1
echo "python backward GPU tests rc=$? $(tail -n 1 "$log/py-bwd-tests.log")"
pack
