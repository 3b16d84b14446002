#!/usr/bin/env bash
# A/B of FP8 forward switches on the GPU machine (after scripts/gpu/build.sh, carry .stage): per
# configuration and shape filter, the per-tensor FP8 time of `flashcore fp8 --bench`, A B A B.
#   CONFIGS="base: wide:FLASHCORE_SM90_FP8_TILE=128x256s2" SHAPES="s4096 d128|s16384 d128" \
#     scripts/gpu/fp8_ab.sh > ab.txt
# A configuration is label:VAR=V,VAR=V (empty after the colon: the defaults), or label@binary:... to
# run another build (scripts/gpu/build_at.sh); shapes are `--only` filters separated by |.
set -uo pipefail
export FLASHCORE_CACHE_DIR=${FLASHCORE_CACHE_DIR:-/tmp/flashcore-cache}
IFS='|' read -ra shapes <<< "${SHAPES:?}"
for p in 1 2; do
  for c in ${CONFIGS:?}; do
    label=${c%%:*}; e=${c#*:}
    fc=.stage/flashcore
    if [[ "$label" == *@* ]]; then
      fc=${label#*@}
      label=${label%%@*}
    fi
    for o in "${shapes[@]}"; do
      env ${e//,/ } timeout 100 "$fc" fp8 --bench --modes fp8-tensor --only "$o" 2>&1 | grep -E "^b[0-9]" | sed "s/^/$label p$p /"
    done
  done
done
