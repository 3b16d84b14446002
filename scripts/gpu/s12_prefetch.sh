#!/usr/bin/env bash
# Session 12, first device call (after scripts/gpu/build.sh and build_wheel.sh; carry .stage):
#  - a clock / power / throttle log (nvidia-smi, every 100 ms) beside everything, to $OUT/smi.csv;
#  - scripts/gpu/order_probe.py: does the bench's backend order move flashcore's D128 S16K row?
#  - the producer's L2 prefetch of K/V blocks d ahead (FLASHCORE_SM90_L2_PREFETCH=d,
#    kernels/sm90/producer.cuh kL2Prefetch) against none, A B A B: short rows (DRAM at every tile
#    start), long rows, and the decode rows (contiguous and shuffled paged pools);
#  - the inference GPU tests and validate --quick with the prefetch on (a hint, but its boxes
#    follow the page table).
#   PART=probe|ab|decode|tests (default: all)
# Outcome (bench/NOTES.md, session 12, item 1): the prefetch lost everywhere (decode 1.36x / 1.85x
# slower at d = 2 / 4), so the knob was taken out again; it lives in commit 4188cdd.
set -uo pipefail
. scripts/gpu/env.sh
part=${PART:-all}
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active \
  --format=csv -lms 100 > "$out/smi.csv" 2>&1 &
smi=$!
stamp() { echo "$(date +%s.%N | cut -c1-14) $*"; }
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" || exit 1
if [[ $part == all || $part == probe ]]; then
  timeout 150 python3 scripts/gpu/order_probe.py d128-s16k d128-s4k > "$out/s12-order-probe.txt" 2>&1
  echo "order probe rc=$?"; cat "$out/s12-order-probe.txt" | grep -v start
fi
if [[ $part == all || $part == ab ]]; then
  stamp "ab start"
  CONFIGS="base: pf2:FLASHCORE_SM90_L2_PREFETCH=2 pf4:FLASHCORE_SM90_L2_PREFETCH=4" \
    ONLY="d128-s512 d128-s4k d128-s16k d64-s512" SUITE=fa timeout 330 scripts/gpu/ab.sh > "$out/s12-prefetch-ab.txt" 2>&1
  CONFIGS="base: pf2:FLASHCORE_SM90_L2_PREFETCH=2 pf4:FLASHCORE_SM90_L2_PREFETCH=4" \
    ONLY="seed-h96" SUITE=seed timeout 60 scripts/gpu/ab.sh >> "$out/s12-prefetch-ab.txt" 2>&1
  stamp "ab end"
  sort -s -k3,3 "$out/s12-prefetch-ab.txt" | awk '{k=$1" "$3; v[k]=v[k]" "$4; r[$3]=1; c[$1]=1} END {for (x in r) {printf "%-20s", x; for (y in c) printf " %s:%s", y, v[y" "x]; print ""}}' | sort
fi
if [[ $part == all || $part == decode ]]; then
  stamp "decode start"
  CONFIGS="base: pf2:FLASHCORE_SM90_L2_PREFETCH=2 pf4:FLASHCORE_SM90_L2_PREFETCH=4" ONLY=decode \
    timeout 300 scripts/gpu/decode_ab.sh > "$out/s12-prefetch-decode-ab.txt" 2>&1
  stamp "decode end"
  grep -v "^==" "$out/s12-prefetch-decode-ab.txt" | sort -s -k2,2 | awk '{print $1, $2, $3, $5, $6, $7, $8}'
fi
if [[ $part == all || $part == tests ]]; then
  FLASHCORE_SM90_L2_PREFETCH=2 timeout 100 .stage/gpu-infer-tests --test-threads 1 > "$out/s12-prefetch-tests.txt" 2>&1
  echo "infer tests rc=$?" >> "$out/s12-prefetch-tests.txt"
  FLASHCORE_SM90_L2_PREFETCH=2 timeout 100 .stage/flashcore validate --quick >> "$out/s12-prefetch-tests.txt" 2>&1
  echo "validate rc=$?" >> "$out/s12-prefetch-tests.txt"
  grep -E "rc=|FAIL|panicked|test result" "$out/s12-prefetch-tests.txt" | head
fi
kill $smi
