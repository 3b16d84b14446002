#!/usr/bin/env bash
# Session 24: why the forward's 128K causal row runs ~8% under the 32K rows on the H200. The L2
# hit rate and DRAM traffic of one launch each (scripts/gpu/ncu_mem.sh), then the CLI bench of the
# long suite with nvidia-smi sampling SM clock and power every 100 ms (a sustained 0.1 s kernel
# may run at a lower clock than the 32K rows' short ones).
# GPU machine after scripts/gpu/build.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s24-long-probe
ROWS="long-32k-causal long-128k-causal" timeout 200 bash scripts/gpu/ncu_mem.sh > "$log/ncu-mem.txt" 2>&1
echo "ncu rc=$?"
grep -E "===|Hit Rate|DRAM Throughput|Duration|dram__bytes|lts__t_sector_hit" "$log/ncu-mem.txt" | head -40
pack
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv,noheader -lms 100 > "$log/smi.csv" &
smi=$!
for row in long-32k-causal long-128k-causal; do
  echo "start $row $(date +%T.%N)" >> "$log/marks.txt"
  timeout 120 .stage/flashcore bench --suite long --only "$row" --iters 20 > "$log/bench-$row.txt" 2>&1
  echo "end $row $(date +%T.%N)" >> "$log/marks.txt"
  grep -E "pass|FAIL" "$log/bench-$row.txt"
done
kill $smi
cat "$log/marks.txt"
# Clock and power while each row's timed runs go (the samples of its last few seconds).
awk -F', ' '{print $2, $3}' "$log/smi.csv" | sort | uniq -c | sort -rn | head -12
pack
