#!/usr/bin/env bash
# Session 24: what the backward's two memory-bound passes cost on the H200 and what bounds them.
# torch.profiler device time per kernel (scripts/gpu/bwd_split_probe.py, flashcore beside cuDNN),
# then one launch each of fc_bwd_prep and fc_bwd_post under Nsight Compute (speed of light,
# occupancy, launch statistics, memory and warp-state sections; clocks left alone).
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s24-prep-probe
install_wheel || exit 1
(cd scripts/gpu && timeout 150 python3 bwd_split_probe.py ${PROBE_ROWS:-}) > "$log/split-probe.txt" 2>&1
echo "split probe rc=$?"
grep -E "===|fc_bwd|cudnn|total" "$log/split-probe.txt" | head -60
pack
for row in ${NCU_ROWS:-bwd-d128-s1k-causal}; do
  timeout 150 ncu --clock-control none --section SpeedOfLight --section Occupancy --section LaunchStats \
    --section MemoryWorkloadAnalysis --section WarpStateStats -k regex:'fc_bwd_(prep|post)' -s 2 -c 2 \
    .stage/flashcore bench --suite bwd --only "$row" --iters 2 > "$log/ncu-$row.txt" 2>&1
  echo "ncu $row rc=$?"
  grep -E "fc_bwd_(prep|post)|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Theoretical Occupancy|Block Limit|Registers Per|Waves Per|Stall|Warp Cycles Per Issued" "$log/ncu-$row.txt" | head -60
  pack
done
