#!/usr/bin/env bash
# Session 20, first call. (1) Does the FP8 suite's input layout explain the ~10% its long rows ran
# under the CLI's (the Python suite used [B, H, S, D] tensors, the CLI [B, S, H, D])? The Python
# FP8 suite at S4K and S16K in both layouts, A B A B, then the CLI's per-tensor rows. (2) Where the
# FP8 d128 three-consumer kernel's warps stall: an Nsight Compute source-level profile of one call
# (D128 S4K, per tensor), summarised per SASS instruction by scripts/gpu/ncu_stalls.py.
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage). Logs packed into
# $OUT/s20-probe.tgz after every step.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s20-probe
install_wheel || exit 1
for p in 1 2; do
  for lay in bhsd bshd; do
    for s in 4096 16384; do
      timeout 120 python3 -m flashcore bench --suite fp8 --layout $lay --only="-s$s" \
        --json "$log/$day-$gpu-s20-layout-$lay-s$s-p$p-python-fp8.json" > "$log/s20-layout-$lay-s$s-p$p.log" 2>&1
      echo "python fp8 $lay s$s p$p rc=$?"
      grep -E "fp8-d(128|256)-s[0-9]+ " "$log/s20-layout-$lay-s$s-p$p.log" | grep -v "_bh" | sed "s/^/$lay p$p /"
    done
    pack
  done
done
[[ "${PYTHON_ONLY:-0}" == 1 ]] && exit 0
SHAPES="s4096 d128|s16384 d128|s4096 d256|s16384 d256" CONFIGS="cli:" scripts/gpu/fp8_ab.sh > "$log/s20-cli-fp8-ab.txt" 2>&1
grep -v causal "$log/s20-cli-fp8-ab.txt"
pack
timeout 240 ncu --set full --import-source no -k regex:fc_fwd_sm90 -s 2 -c 1 -o "$log/fp8-d128" \
  python3 scripts/gpu/pipes_probe.py fp8 4096 128 > "$log/ncu-fp8-d128.log" 2>&1
echo "ncu rc=$?"
python3 scripts/gpu/ncu_stalls.py "$log/fp8-d128.ncu-rep" 60 > "$log/s20-ncu-stalls-fp8-d128.txt" 2>&1
head -n 90 "$log/s20-ncu-stalls-fp8-d128.txt"
rm -f "$log/fp8-d128.ncu-rep"
pack
