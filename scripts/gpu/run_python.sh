#!/usr/bin/env bash
# The Python package on the GPU machine, from the repo root, after scripts/gpu/build_wheel.sh staged
# .stage/flashcore-*.whl (pass `.stage` in the device tool's `carry`):
#   scripts/gpu/run_python.sh [tests|bwd|bench|all] [extra pytest args for `tests`...]
# tests: every Python test marked `gpu` (forward, native backward, compile, CUDA graphs, GPT step);
# bwd:   python -m flashcore validate --suite bwd-edge, then bench --suite bwd (flashcore and the SDPA
#        flash/cuDNN/efficient backends in one process, records with mode "bwd");
# bench: bench --suite all (forward and backward rows); all: tests, bwd validation, bench --suite all.
# Logs and JSON go to $OUT (or ./out). Installs the wheel with --no-deps into /tmp/fcpy (the machine's
# torch and its nvidia-cuda-nvrtc are used).
set -uo pipefail
mode=${1:-tests}
shift || true
out=${OUT:-out}
mkdir -p "$out"
export FLASHCORE_CACHE_DIR=${FLASHCORE_CACHE_DIR:-/tmp/flashcore-cache}
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/fcpy${PYTHONPATH:+:$PYTHONPATH}
whl=$(ls .stage/flashcore-*.whl 2>/dev/null | head -n 1)
[ -n "$whl" ] || { echo "no .stage/flashcore-*.whl: run scripts/gpu/build_wheel.sh first"; exit 1; }
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$whl" || exit 1
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | tr ' ' '-' | tr -cd '[:alnum:]-')
day=$(date +%F)
rc=0
python3 -m flashcore info
if [ "$mode" = tests ] || [ "$mode" = all ]; then
  python3 -m pytest -p no:cacheprovider python/tests -m gpu -ra "$@" 2>&1 | tee "$out/py-gpu-tests.log"
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
fi
if [ "$mode" = bwd ] || [ "$mode" = all ]; then
  python3 -m flashcore validate --suite bwd-edge --json "$out/py-validate-bwd-edge.json" || rc=1
fi
if [ "$mode" = bwd ]; then
  python3 -m flashcore bench --suite bwd --json "$out/$day-$gpu-python-bwd.json" --plot "$out/$day-$gpu-python-bwd.png" || rc=1
fi
if [ "$mode" = bench ] || [ "$mode" = all ]; then
  python3 -m flashcore bench --suite all --json "$out/$day-$gpu-python-all.json" --plot "$out/$day-$gpu-python-all.png" || rc=1
fi
exit $rc
