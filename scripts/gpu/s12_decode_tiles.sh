#!/usr/bin/env bash
# Session 12: decode tiles with more bytes in flight per SM (knobs only). The paged rows lose ~3% to
# the contiguous ones (a shuffled pool: every page a new place, likely a new TLB entry), and a
# 2-stage ring of 64 KiB stages has one stage in flight while the consumers read the other.
# Configurations: the planner's 128x128 two-stage tile; three stages with one Q slot (224 KiB);
# 64-key blocks with four stages (two Q slots) and six (one Q slot). A B A B, B32 rows.
# On the GPU machine after scripts/gpu/build.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
CONFIGS="base: n128s3:FLASHCORE_SM90_TILE=128x128o1s3,FLASHCORE_SM90_Q_STAGES=1 n64s4:FLASHCORE_SM90_TILE=128x64o1s4 n64s6:FLASHCORE_SM90_TILE=128x64o1s6,FLASHCORE_SM90_Q_STAGES=1" \
  ONLY=decode-b32 timeout 400 scripts/gpu/decode_ab.sh > "$out/s12-decode-tiles-ab.txt" 2>&1
grep -v "^==" "$out/s12-decode-tiles-ab.txt" | sort -s -k2,2 -k4,4 | awk '{print $1, $2, $4, $7, $8, $10}'
grep "^==" "$out/s12-decode-tiles-ab.txt"
