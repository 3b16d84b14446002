#!/usr/bin/env bash
# Session 15: the backward's causal sections (Work::sectioned, longest CTAs first across an L2
# budget of heads) extended from d128 to d96: A B A B of FLASHCORE_SM90_BWD_SECTION_MIB=0 (launch
# order) against the default on the d96 causal row, d128's as a control, plus the backward GPU tests.
set -uo pipefail
. "$(dirname "$0")/env.sh"
export FLASHCORE_CACHE_DIR=/tmp/fc
bwd_warm_and_test s15-sec
{
  SUITE=bwd-long CONFIGS="order:FLASHCORE_SM90_BWD_SECTION_MIB=0 sections:" ONLY="bwd-d96-s4k-causal" bash "$(dirname "$0")/ab.sh"
  SUITE=bwd CONFIGS="order:FLASHCORE_SM90_BWD_SECTION_MIB=0 sections:" ONLY="bwd-d128-s4k-causal" bash "$(dirname "$0")/ab.sh"
} | tee "$out/s15-d96-sections-ab.txt"
