#!/usr/bin/env bash
# Session 14: power, SM clock and sustained TF/s of flashcore and cuDNN (scripts/gpu/s14_power.py),
# default build and with clusters forced on. GPU machine, after build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy .stage/flashcore-*.whl || exit 1
S=${SECONDS_PER_PHASE:-5}
if [ -n "${PACK_ROWS:-}" ]; then
  # GQA packing at every query length (FLASHCORE_SM90_PACK) against the default, in turn.
  for k in 1 4; do
    FLASHCORE_SM90_PACK=$k python3 scripts/gpu/s14_power.py $out/s14-power-pack$k $S $PACK_ROWS > $out/s14-power-pack$k.txt 2>&1
    tail -8 $out/s14-power-pack$k.txt
  done
elif [ -n "${BWD_ROWS:-}" ]; then
  python3 scripts/gpu/s14_power.py $out/s14-power-bwd $S $BWD_ROWS > $out/s14-power-bwd.txt 2>&1
  tail -14 $out/s14-power-bwd.txt
else
python3 scripts/gpu/s14_power.py $out/s14-power $S d128-s16k d128-s4k gqa32-8-s8k-causal ${EXTRA_ROWS:-} > $out/s14-power.txt 2>&1
tail -16 $out/s14-power.txt
FLASHCORE_SM90_CLUSTER=1 python3 scripts/gpu/s14_power.py $out/s14-power-c2 $S d128-s16k d128-s4k > $out/s14-power-c2.txt 2>&1
tail -10 $out/s14-power-c2.txt
fi
