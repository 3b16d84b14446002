# Sourced by the GPU-machine scripts (from the repo root): where logs go ($OUT, else ./out), the
# kernel cache, the Python package installed by `pip install --target /tmp/fcpy`, and the names the
# results carry (the GPU's name and the date).
out=${OUT:-out}
mkdir -p "$out"
export FLASHCORE_CACHE_DIR=${FLASHCORE_CACHE_DIR:-/tmp/flashcore-cache}
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/fcpy${PYTHONPATH:+:$PYTHONPATH}
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | tr ' ' '-' | tr -cd '[:alnum:]-')
day=$(date +%F)
# Warms the backward kernels into the cache (unless BWD_WARM=0: the tests then compile what they
# use) and runs the backward GPU tests (in the caller's environment): logs $out/TAG-warmup.log and
# $out/TAG-tests.log, a summary line each, and the first failure if any.
bwd_warm_and_test() {
  if [ "${BWD_WARM:-1}" != 0 ]; then
    timeout 120 .stage/flashcore warmup --only bwd > "$out/$1-warmup.log" 2>&1
    tail -n 1 "$out/$1-warmup.log"
  fi
  timeout 200 .stage/gpu-tests --test-threads 1 backward > "$out/$1-tests.log" 2>&1
  echo "tests rc=$? $(grep -E '^test result' "$out/$1-tests.log" | tail -n 1)"
  grep -A3 panicked "$out/$1-tests.log" | head -n 4
}
# After packed_logs: bwd_warm_and_test into $log, then `validate --full --only bwd-` (time limit
# $2 seconds, default 150) into $log/TAG-validate-bwd.log; prints the pass / FAIL counts.
bwd_checks() {
  local keep=$out
  out=$log
  bwd_warm_and_test "$1"
  out=$keep
  timeout "${2:-150}" .stage/flashcore validate --full --only bwd- > "$log/$1-validate-bwd.log" 2>&1
  echo "validate bwd rc=$? $(grep -cE ' pass ' "$log/$1-validate-bwd.log") pass, $(grep -cE ' FAIL ' "$log/$1-validate-bwd.log") FAIL"
}
# Logs kept outside $OUT and packed into $OUT/NAME.tgz by `pack` after every step: the device
# returns few files, and a call cut short still returns what ran. `packed_logs NAME` sets $log.
packed_logs() {
  log=/tmp/$1
  mkdir -p "$log"
  tgz=$out/$1.tgz
}
pack() { tar czf "$tgz" -C "$log" .; }
# The kernel cache in /tmp/fc, seeded with the kernels scripts/gpu/warm_cache.sh compiled on the
# build machine into .stage/fc-cache (if any); the rest compile here on first use.
use_staged_cache() {
  export FLASHCORE_CACHE_DIR=/tmp/fc
  mkdir -p /tmp/fc
  if [ -d .stage/fc-cache ]; then cp -r .stage/fc-cache/. /tmp/fc/; fi
}
# After packed_logs: every Rust GPU test, then the inference-path GPU tests, into $log
# (rust-gpu-tests.txt, rust-infer.txt), a summary line each and the first failure; packs after each.
rust_gpu_checks() {
  timeout 240 .stage/gpu-tests --test-threads 1 > "$log/rust-gpu-tests.txt" 2>&1
  echo "Rust GPU tests rc=$? $(grep -E '^test result' "$log/rust-gpu-tests.txt")"
  grep -A4 panicked "$log/rust-gpu-tests.txt" | head -n 10
  pack
  timeout 90 .stage/gpu-infer-tests --test-threads 1 > "$log/rust-infer.txt" 2>&1
  echo "inference-path tests rc=$? $(grep -E '^test result' "$log/rust-infer.txt")"
}
# The staged wheel into /tmp/fcpy (on PYTHONPATH above).
install_wheel() { python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)"; }
# The FP8 GPU test and `flashcore fp8` validation in the caller's environment, into
# $log/TAG-tests.txt (packed_logs first); prints the summary lines.
fp8_checks() {
  {
    echo "== FP8 GPU test"
    timeout 150 .stage/gpu-tests --test-threads 1 fp8 2>&1 | grep -E -A12 "^test |test result|panicked" | head -40
    echo "== flashcore fp8"
    timeout 150 .stage/flashcore fp8 2>&1 | tail -45
  } > "$log/$1-tests.txt" 2>&1
  grep -E "test result|FAIL|panicked| no$|within" "$log/$1-tests.txt" | head -20
}
# compute-sanitizer's TOOLS (default: memcheck racecheck synccheck) on `flashcore fp8 --only ROW`
# for each ROW, in the caller's environment, logs $log/TAG-TOOL-ROW.txt; prints each summary.
fp8_sanitize() {
  local tag=$1 tool o f
  shift
  for tool in ${TOOLS:-memcheck racecheck synccheck}; do
    for o in "$@"; do
      f="$log/$tag-$tool-${o// /-}.txt"
      timeout 200 compute-sanitizer --tool "$tool" --error-exitcode 9 .stage/flashcore fp8 --only "$o" > "$f" 2>&1
      echo "$tool $o rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$f" | head -n 1)"
    done
  done
}
