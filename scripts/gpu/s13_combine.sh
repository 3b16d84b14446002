#!/usr/bin/env bash
# Session 13: the split combine with all of a row's LSEs in lane registers and its partial rows
# loaded several splits at a time (16-byte loads), against the previous build (.stage/flashcore-old).
# Inference GPU tests (forced splits 1..64, sinks, paged / varlen + split), then the decode suite
# A B A B, then Nsight Compute's duration of the combine kernel alone on the B1 128K row (ncu locks
# clocks: compare old and new with each other only). On the GPU machine after scripts/gpu/build.sh
# with the old CLI copied to .stage/flashcore-old (carry .stage). Logs in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
timeout 240 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked" > $out/s13-combine-tests.txt
tail -2 $out/s13-combine-tests.txt
CONFIGS="old:@.stage/flashcore-old, new:" timeout 300 scripts/gpu/decode_ab.sh > $out/s13-combine-decode-ab.txt 2>&1
grep -E "decode-b1|decode-b32 " $out/s13-combine-decode-ab.txt | sort -s -k2,2
for b in old new; do
  fc=.stage/flashcore; [ $b = old ] && fc=.stage/flashcore-old
  echo "== $b"
  timeout 120 ncu -k regex:fc_ -c 12 --metrics gpu__time_duration.sum $fc bench --suite decode --only decode-b1-128k --iters 2 2>&1 \
    | grep -E "^  fc_[a-z0-9_]+|gpu__time_duration" | paste - - | awk '{print $1, $(NF-1), $NF}' | sort | uniq -c
done > $out/s13-combine-ncu.txt 2>&1
cat $out/s13-combine-ncu.txt
