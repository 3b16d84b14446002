#!/usr/bin/env bash
# A/B of planner switches on the GPU machine, all configurations in one process tree so they see the
# same clocks: for each configuration and each name filter, bench the matching rows.
#   CONFIGS="base:FLASHCORE_SM90_Q_STAGES=1 new:" ONLY="s512 s4k seed-h96" scripts/gpu/ab.sh
# A configuration is label:VAR=V,VAR=V (empty after the colon: the defaults), or label@binary:...
# to run another build (e.g. old@.stage/flashcore-old: for an A/B of kernel code). The configurations
# are run twice in alternation (A B A B) so a drift in clocks shows up as a disagreement between passes.
set -uo pipefail
export FLASHCORE_CACHE_DIR=${FLASHCORE_CACHE_DIR:-/tmp/flashcore-cache}
for pass in 1 2; do
  for c in ${CONFIGS:?}; do
    label=${c%%:*}
    envs=${c#*:}
    fc=.stage/flashcore
    if [[ "$label" == *@* ]]; then
      fc=${label#*@}
      label=${label%%@*}
    fi
    for o in ${ONLY:?}; do
      env ${envs//,/ } "$fc" bench --suite "${SUITE:-all}" --only "$o" --iters "${ITERS:-20}" \
        | awk -v t="$label" -v p="$pass" '/ pass | FAIL /{for (i = 1; i <= NF; ++i) if ($i == "pass" || $i == "FAIL") break;
            printf "%-12s p%s %-22s %8s TF/s %s\n", t, p, $1, $(i + 3), $i}'
    done
  done
done
