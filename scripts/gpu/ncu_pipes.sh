#!/usr/bin/env bash
# Pipe utilisation and issue of the Hopper forward, FP8 beside bf16 on one shape (run on the GPU
# machine with the wheel installed in /tmp/fcpy): ncu's raw metrics for the pipes (tensor, XU =
# MUFU, FMA, ALU), issue slots and the warp-state totals, per mode.
#   SHAPE="4096 128" scripts/gpu/ncu_pipes.sh > pipes.txt
# ncu locks the clocks to base: compare the two modes' shares, not absolute times with the bench's.
set -uo pipefail
. "$(dirname "$0")/env.sh"
for mode in ${MODES:-fp8 bf16}; do
  echo "=== $mode ${SHAPE:-4096 128}"
  ncu --section SpeedOfLight --section ComputeWorkloadAnalysis --section InstructionStats \
      --section WarpStateStats --section SchedulerStats --page raw -k regex:fc_fwd_sm90 -s 2 -c 1 \
      python3 scripts/gpu/pipes_probe.py "$mode" ${SHAPE:-4096 128} > "$out/ncu-raw-$mode.txt" 2>&1
  grep -E "fc_fwd_sm90|gpu__time_duration.sum|sm__inst_executed_pipe_[a-z_]+\.avg\.pct|sm__pipe_[a-z_]+_cycles_active\.avg\.pct|issue_active\.avg\.pct|smsp__average_warp|warps_active\.avg\.pct|smsp__pcsamp_warps_issue_stalled_[a-z_]+ " \
    "$out/ncu-raw-$mode.txt" | grep -vE " 0$| 0\.00?$| n/a"
done
