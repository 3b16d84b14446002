#!/usr/bin/env bash
# Decode A/B on the GPU machine (staged .stage/flashcore from scripts/gpu/build.sh): the decode bench
# (`flashcore bench --suite decode`: rows, time, GB/s and % of a device-to-device copy timed in the
# same process) under each configuration, run twice in alternation (A B A B) so clock drift shows up.
#   CONFIGS="base: t64s3:FLASHCORE_SM90_TILE=64x128s3,FLASHCORE_SM90_Q_STAGES=1" scripts/gpu/decode_ab.sh
# A configuration is label:VAR=V,VAR=V (empty after the colon: the defaults), optionally starting with
# @BINARY, (another staged CLI, e.g. "old:@.stage/flashcore-old," for a kernel change's A/B).
# ONLY=name runs the rows whose name contains it (e.g. ONLY=decode-b32: the B32 rows).
# Full logs: $OUT/decode-*.log.
set -uo pipefail
out=${OUT:-out}
mkdir -p "$out"
export FLASHCORE_CACHE_DIR=${FLASHCORE_CACHE_DIR:-/tmp/flashcore-cache}
for pass in 1 2; do
  for c in ${CONFIGS:?}; do
    label=${c%%:*} envs=${c#*:} bin=.stage/flashcore
    if [[ $envs == @* ]]; then bin=${envs%%,*} bin=${bin#@} envs=${envs#*,}; fi
    log="$out/decode-$label-p$pass.log"
    # shellcheck disable=SC2086
    env ${envs//,/ } timeout 120 "$bin" bench --suite decode ${ONLY:+--only "$ONLY"} --iters "${ITERS:-30}" >"$log" 2>&1
    echo "== $label p$pass ($bin $envs) rc=$? $(grep -m1 'copy:' "$log")"
    # Columns from the end: variant, "splitsN", and before them ms TF/s GB/s %copy.
    awk -v t="$label" '/ pass | FAIL /{printf "  %-8s %-20s %s %s %s s=%s %8s ms %6s %%copy %s\n", t, $1, $2, $5, $7, $(NF-9), $(NF-5), $(NF-2), $(NF-6)}' "$log"
  done
done
