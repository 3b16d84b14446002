# Sourced by the GPU-machine scripts (from the repo root): where logs go ($OUT, else ./out), the
# kernel cache, the Python package installed by `pip install --target /tmp/fcpy`, and the names the
# results carry (the GPU's name and the date).
out=${OUT:-out}
mkdir -p "$out"
export FLASHCORE_CACHE_DIR=${FLASHCORE_CACHE_DIR:-/tmp/flashcore-cache}
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/fcpy${PYTHONPATH:+:$PYTHONPATH}
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | tr ' ' '-' | tr -cd '[:alnum:]-')
day=$(date +%F)
# Warms the backward kernels into the cache and runs the backward GPU tests (in the caller's
# environment): logs $out/TAG-warmup.log and $out/TAG-tests.log, a summary line each, and the first
# failure if any.
bwd_warm_and_test() {
  timeout 120 .stage/flashcore warmup --only bwd > "$out/$1-warmup.log" 2>&1
  tail -n 1 "$out/$1-warmup.log"
  timeout 200 .stage/gpu-tests --test-threads 1 backward > "$out/$1-tests.log" 2>&1
  echo "tests rc=$? $(grep -E '^test result' "$out/$1-tests.log" | tail -n 1)"
  grep -A3 panicked "$out/$1-tests.log" | head -n 4
}
# Logs kept outside $OUT and packed into $OUT/NAME.tgz by `pack` after every step: the device
# returns few files, and a call cut short still returns what ran. `packed_logs NAME` sets $log.
packed_logs() {
  log=/tmp/$1
  mkdir -p "$log"
  tgz=$out/$1.tgz
}
pack() { tar czf "$tgz" -C "$log" .; }
