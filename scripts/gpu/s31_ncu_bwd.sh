#!/usr/bin/env bash
# Session 31: Nsight Compute on the Hopper backward's main kernel (CLI bench, one launch), with and
# without the timing probes (FLASHCORE_SM90_BWD_PROBE, PROBES: 0 = none), for ROWS (bench names):
# shared-memory traffic, pipe utilisation and the warp stall reasons, raw pages kept in the log
# folder, the interesting lines printed. ncu locks the clocks: compare within the run.
# GPU machine after scripts/gpu/build.sh (and scripts/gpu/warm_cache.sh), carry .stage.
set -uo pipefail
. scripts/gpu/env.sh
use_staged_cache
packed_logs s31-ncu
for row in ${ROWS:-bwd-d128-s4k bwd-d64-s4k}; do
  for pb in ${PROBES:-0 16}; do
    f="$log/ncu-$row-p$pb.txt"
    env FLASHCORE_SM90_BWD_PROBE=$pb ncu --section SpeedOfLight --section MemoryWorkloadAnalysis \
      --section ComputeWorkloadAnalysis --section WarpStateStats --section InstructionStats --page raw \
      -k regex:fc_bwd_sm90 -s 2 -c 1 .stage/flashcore bench --suite bwd --only "$row" --iters 3 > "$f" 2>&1
    echo "=== $row probe $pb"
    # The metrics bench/NOTES.md session 31 item 3 reads: time, tensor and shared-memory pipe
    # activity, L1 / L2 throughput, issue and the stall reasons per issue.
    grep -E "gpu__time_duration.sum|sm__pipe_(tensor|shared)_cycles_active.avg.pct_of_peak_sustained_elapsed|(l1tex|lts)__throughput.avg.pct|issue_active.avg.pct|smsp__average_warps_issue_stalled_[a-z_]+_per_issue_active\.ratio" "$f" \
      | grep -vE " 0$| 0\.00?$| n/a" | head -60
    pack
  done
done
