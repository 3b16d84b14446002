#!/usr/bin/env bash
# For session 18's first device call (bench/NOTES.md session 17 item 4): the published tiles'
# A B A B on the rows it did not cover, d64 and d128 non-causal from 2K keys (the Python run after
# the change had them 1-8% below the morning's, read as the machine but not measured side by side),
# plus MQA (-1.1% in the A B A B) and the d64 S1K causal sections question (sections on / off).
# Here first: scripts/gpu/build.sh && scripts/gpu/build_at.sh c1311df before
# (c1311df: the tree before PublishedTile). GPU machine; carry .stage.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_BENCH_LSE=0 FLASHCORE_CACHE_DIR=/tmp/fc
CONFIGS="before@.stage/flashcore-before: new: new0:FLASHCORE_SM90_SECTION_MIB=0" SUITE=all \
  ONLY="${ONLY:-d64-s1k-causal d64-s2k d64-s4k d64-s16k d128-s8k d128-s16k mqa16 d128-s1k-causal}" \
  bash scripts/gpu/ab.sh | tee "$out/s18-first-ab.txt"
tar czf "$out/s18-first.tgz" -C "$out" s18-first-ab.txt
