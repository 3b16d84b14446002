# Sourced by the GPU-machine scripts (from the repo root): where logs go ($OUT, else ./out), the
# kernel cache, the Python package installed by `pip install --target /tmp/fcpy`, and the names the
# results carry (the GPU's name and the date).
out=${OUT:-out}
mkdir -p "$out"
export FLASHCORE_CACHE_DIR=${FLASHCORE_CACHE_DIR:-/tmp/flashcore-cache}
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/fcpy${PYTHONPATH:+:$PYTHONPATH}
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | tr ' ' '-' | tr -cd '[:alnum:]-')
day=$(date +%F)
