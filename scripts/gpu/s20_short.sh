#!/usr/bin/env bash
# Session 20, second call: where the short forward rows' time goes. Nsight Compute source-level
# stall samples of one call each (D128 S512, D64 S512 causal, the seed B16 H96 S512 D64 fp16, and
# D128 S4K as the long-row control), every instruction in program order (scripts/gpu/ncu_stalls.py
# all.tsv) so prologue, main loop and epilogue can be told apart against the SASS. Then the FP8
# suite's S16K gap to the CLI (this session's first call: not the layout) with the SM clock, power
# and temperature sampled every 100 ms beside the Python suite and the CLI.
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage). Logs packed into
# $OUT/s20-short.tgz after every step.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s20-short
install_wheel || exit 1
prof() {  # name, env, probe args
  local name=$1 e=$2; shift 2
  env $e timeout 200 ncu --set full --import-source no -k regex:fc_fwd_sm90 -s 2 -c 1 -o "$log/$name" \
    python3 scripts/gpu/pipes_probe.py "$@" > "$log/ncu-$name.log" 2>&1
  echo "ncu $name rc=$?"
  python3 scripts/gpu/ncu_stalls.py "$log/$name.ncu-rep" 30 "$log/s20-stalls-$name.tsv" > "$log/s20-stalls-$name.txt" 2>&1
  head -n 24 "$log/s20-stalls-$name.txt" | cut -c1-160
  ncu -i "$log/$name.ncu-rep" --page details --csv 2>/dev/null | grep -E '"Duration"|"Registers Per Thread"|"Compute \(SM\) Throughput"|"Memory Throughput"|"DRAM Throughput"|"L2 Hit Rate"|"Issue Slots Busy"' | cut -c1-200 > "$log/s20-details-$name.txt"
  cat "$log/s20-details-$name.txt" | awk -F'","' '{print $(NF-2), $(NF-1), $NF}'
  rm -f "$log/$name.ncu-rep"
  pack
}
prof d128-s512 "" bf16 512 128
prof d64-s512-causal "" bf16 512 64 causal
prof seed "PROBE_B=16 PROBE_H=96 PROBE_DTYPE=fp16" bf16 512 64
prof d128-s4k "" bf16 4096 128
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
  --format=csv -lms 100 > "$log/s20-clocks-python.csv" 2>&1 &
smi=$!
timeout 120 python3 -m flashcore bench --suite fp8 --only=d256-s16384 > "$log/s20-clocks-python-fp8.log" 2>&1
kill $smi
grep -E "fp8-d256" "$log/s20-clocks-python-fp8.log"
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
  --format=csv -lms 100 > "$log/s20-clocks-cli.csv" 2>&1 &
smi=$!
timeout 100 .stage/flashcore fp8 --bench --modes fp8-tensor --only "s16384 d256" > "$log/s20-clocks-cli-fp8.log" 2>&1
kill $smi
grep -E "^b[0-9]" "$log/s20-clocks-cli-fp8.log"
for f in python cli; do
  echo "== clocks $f: samples, SM MHz min/median/max, W max"
  awk -F', ' 'NR>1 && $2+0>0 {print $2+0, $4+0}' "$log/s20-clocks-$f.csv" | sort -n | awk '{c[NR]=$1; if ($2>w) w=$2} END {print NR, c[1], c[int(NR/2)+1], c[NR], w}'
done
pack
