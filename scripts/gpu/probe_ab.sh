#!/usr/bin/env bash
# Timing probes of the Hopper forward (FLASHCORE_SM90_PROBE bits, kernels/sm90/consumer.cuh; wrong
# outputs, so the rows print FAIL) beside the defaults, A B A B, on the GPU machine after
# scripts/gpu/build.sh (carry .stage). PROBES and ONLY override the sets; the log goes to $OUT.
set -uo pipefail
. scripts/gpu/env.sh
configs="base:"
for p in ${PROBES:-1 2 4 6 8 10 12 14}; do configs="$configs p$p:FLASHCORE_SM90_PROBE=$p"; done
CONFIGS="$configs" ONLY="${ONLY:-d128-s4k d128-s16k d256-s4k}" SUITE=fa scripts/gpu/ab.sh
