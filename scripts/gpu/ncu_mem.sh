#!/usr/bin/env bash
# Memory-side profile of the Hopper forward for a few bench rows (run on the GPU machine after
# scripts/gpu/build.sh): per row, one launch of fc_fwd_sm90 under Nsight Compute with the
# speed-of-light and memory sections (L2 hit rate, DRAM throughput, tensor pipe), printed as text.
#   ROWS="long-32k long-32k-causal mqa16-1-s2k d128-s2k" scripts/gpu/ncu_mem.sh > mem.txt
# ncu locks the clocks to base, so read ratios and hit rates here, not absolute speed.
set -uo pipefail
export FLASHCORE_CACHE_DIR=${FLASHCORE_CACHE_DIR:-/tmp/flashcore-cache}
for row in ${ROWS:?}; do
  echo "=== $row"
  ncu --section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis \
      --metrics lts__t_sector_hit_rate.pct,dram__bytes_read.sum,lts__t_bytes.sum \
      -k regex:fc_fwd_sm90 -s 2 -c 1 \
      .stage/flashcore bench --suite all --only "$row" --iters 3 2>&1 \
    | grep -vE '^==PROF==|^\s*$|----' | grep -E 'fc_fwd|Hit Rate|Throughput|Busy|Pipe|Duration|dram__|lts__|Issue|Executed Ipc|Mem' 
done
