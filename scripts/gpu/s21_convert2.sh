#!/usr/bin/env bash
# Session 21, second try of the in-kernel dQ conversion (FLASHCORE_SM90_BWD_CONVERT=1): each
# converting thread prefetches into L1 the row it converts four turns later (the first try was
# bound by one L2 round trip a turn), and only CTAs that own a unit with data wait for the
# converted row. A B A B against the post kernel on the backward rows.
# GPU machine after scripts/gpu/build.sh (carry .stage). Logs packed into $OUT/s21-convert2.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s21-convert2
CONFIGS="base:FLASHCORE_SM90_BWD_CONVERT=0 conv:FLASHCORE_SM90_BWD_CONVERT=1" SUITE=bwd ITERS=20 \
  ONLY="bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k" scripts/gpu/ab.sh > "$log/convert2-ab.txt" 2>&1
sort -s -k3,3 "$log/convert2-ab.txt"
pack
