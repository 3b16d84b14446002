#!/usr/bin/env bash
# Session 17, after the published tiles (smem.cuh PublishedTile): the forward suites beside SDPA in
# one process, backends in rounds. GPU machine, after build_wheel.sh; carry .stage. All output in
# one archive (the device returns at most 8 files).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" || exit 1
for s in ${SUITES:-fa seed gqa}; do
  timeout 200 python3 -m flashcore bench --suite "$s" --json "$out/$day-$gpu-s17-after-python-$s.json" \
    > "$out/s17-after-python-$s.log" 2>&1
  echo "bench $s rc=$?"
  grep -E " flashcore | sdpa_cudnn " "$out/s17-after-python-$s.log" | awk '{print $1, $2, $3, $4}'
done
tar czf /tmp/s17-after.tgz -C "$out" . && rm -rf "${out:?}"/* && mv /tmp/s17-after.tgz "$out/"
