#!/usr/bin/env bash
# Session 20, fourth call. (1) What the FP8 V transpose pre-pass (fc_fp8_vt) costs beside the main
# kernel: Nsight Compute durations of both per call (clocks locked by ncu; compare shares). (2) The
# FP8 suite's gap to the CLI after idle and run by run (scripts/gpu/fp8_gap_probe.py). (3) Where the
# backward's warps stall: source-level samples of the main kernel at D128 S4K and D64 S1K, every
# instruction in program order (scripts/gpu/ncu_stalls.py).
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage). Logs packed into
# $OUT/s20-vt.tgz after every step.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s20-vt
install_wheel || exit 1
for sd in "1024 128" "4096 128" "16384 128" "4096 256" "4096 64"; do
  timeout 120 ncu --metrics gpu__time_duration.sum -k regex:"fc_(fp8_vt|fwd_sm90)" python3 scripts/gpu/pipes_probe.py fp8 $sd \
    > "$log/s20-vt-ncu-${sd// /-}.log" 2>&1
  echo "== fp8 $sd: kernel, duration"
  grep -E "fc_fp8_vt|fc_fwd_sm90|gpu__time_duration" "$log/s20-vt-ncu-${sd// /-}.log" | awk '/fc_/{k=$1} /gpu__time/{print k, $(NF-1), $NF}' | tail -n 4
done
pack
timeout 200 python3 scripts/gpu/fp8_gap_probe.py 16384 128 > "$log/s20-fp8-gap-idle.txt" 2>&1
echo "gap probe rc=$?"; cat "$log/s20-fp8-gap-idle.txt"
pack
for row in "4096 128" "1024 64"; do
  name=bwd-${row// /-}
  timeout 200 ncu --set full --import-source no -k regex:fc_bwd_sm90 -s 2 -c 1 -o "$log/$name" \
    python3 scripts/gpu/bwd_probe.py $row > "$log/ncu-$name.log" 2>&1
  echo "ncu $name rc=$?"
  python3 scripts/gpu/ncu_stalls.py "$log/$name.ncu-rep" 30 "$log/s20-stalls-$name.tsv" > "$log/s20-stalls-$name.txt" 2>&1
  head -n 40 "$log/s20-stalls-$name.txt" | cut -c1-160
  ncu -i "$log/$name.ncu-rep" --page details --csv 2>/dev/null | grep -E '"Duration"|"Registers Per Thread"|"Compute \(SM\) Throughput"|"DRAM Throughput"|"L2 Hit Rate"|"Issue Slots Busy"|"Shared Memory"' | awk -F'","' '{print $(NF-2), $(NF-1), $NF}' | cut -c1-120
  rm -f "$log/$name.ncu-rep"
  pack
done
