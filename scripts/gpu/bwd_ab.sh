#!/usr/bin/env bash
# Hopper backward A/B on the device (staged binaries from scripts/gpu/build.sh, carry .stage):
# GPU tests of the backward, validate, then bench rows per configuration.
#   scripts/gpu/bwd_ab.sh TAG TESTS(0|1) VALIDATE_ONLY BENCH_ONLY "A:" "B:FLASHCORE_X=1" ...
# Full logs go to $OUT/TAG-*.log; a short summary is printed last.
set -uo pipefail
tag=$1 tests=$2 vonly=$3 bonly=$4
shift 4
out=${OUT:-/tmp/out}
mkdir -p "$out"
export FLASHCORE_CACHE_DIR=/tmp/fc
timeout 120 .stage/flashcore warmup --only bwd >"$out/$tag-warmup.log" 2>&1
tail -n 1 "$out/$tag-warmup.log"
if [ "$tests" = 1 ]; then
  timeout 150 .stage/gpu-tests --test-threads 1 backward >"$out/$tag-tests.log" 2>&1
  echo "tests rc=$? $(grep -E '^test result' "$out/$tag-tests.log" | tail -n 1)"
fi
if [ -n "$vonly" ]; then
  timeout 120 .stage/flashcore validate --full --only "$vonly" >"$out/$tag-validate.log" 2>&1
  echo "validate($vonly) rc=$? $(tail -n 1 "$out/$tag-validate.log")"
fi
for c in "$@"; do
  name=${c%%:*} envs=${c#*:}
  # shellcheck disable=SC2086
  env $envs timeout 90 .stage/flashcore bench --suite bwd --iters 20 --only "$bonly" >"$out/$tag-bench-$name.log" 2>&1
  echo "== $name ($envs) rc=$?"
  grep -E "bwd-" "$out/$tag-bench-$name.log" | awk '{print "  " $0}' | cut -c1-150
done
