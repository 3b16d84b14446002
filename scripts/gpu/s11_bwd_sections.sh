#!/usr/bin/env bash
# Session 11: the Hopper backward's causal CTAs remapped longest first across sections of
# (kv head, batch) rows (kernels/sm90/bwd_config.cuh Work::sectioned, FLASHCORE_SM90_BWD_SECTION_MIB;
# 0 = launch order, the old one). Correctness (Rust backward GPU tests, validate --quick), A B A B
# of the causal backward rows against the old order, then the Python backward bench beside SDPA and
# the Python GPU tests. On the GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage).
# This ran with the remap at every head dim; it stayed at d128 only, and the A B A B of that build
# ran with the old order first (results ...-s11-bwd-sections-d128-ab.txt):
#   CONFIGS="old:FLASHCORE_SM90_BWD_SECTION_MIB=0 sec:" SUITE=bwd ITERS=20 \
#     ONLY="bwd-d128-s16k-causal bwd-d128-s4k-causal bwd-d128-s1k-causal bwd-gqa bwd-d64-s1k-causal" scripts/gpu/ab.sh
set -uo pipefail
. scripts/gpu/env.sh
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" || exit 1
timeout 150 .stage/gpu-tests --test-threads 1 backward > $out/s11-bwd-sections-tests.txt 2>&1; echo "bwd tests rc=$?" >> $out/s11-bwd-sections-tests.txt
timeout 100 .stage/flashcore validate --quick >> $out/s11-bwd-sections-tests.txt 2>&1; echo "validate rc=$?" >> $out/s11-bwd-sections-tests.txt
grep -E "rc=|FAIL|panicked|test result" $out/s11-bwd-sections-tests.txt | head
CONFIGS="sec: old:FLASHCORE_SM90_BWD_SECTION_MIB=0" SUITE=bwd \
  ONLY="bwd-d128-s1k-causal bwd-d128-s4k-causal bwd-d128-s16k-causal bwd-d64-s1k-causal bwd-d64-s4k-causal bwd-gqa" \
  timeout 200 scripts/gpu/ab.sh > $out/s11-bwd-sections-ab.txt 2>&1
sort -s -k3,3 $out/s11-bwd-sections-ab.txt
timeout 150 python3 -m flashcore bench --suite bwd --json "$out/$day-$gpu-s11-python-bwd.json" > "$out/bench-bwd.log" 2>&1; echo "bench bwd rc=$?"
timeout 170 python3 -m pytest -p no:cacheprovider -q python/tests -m gpu -ra > "$out/py-gpu-tests.log" 2>&1; echo "pytest rc=$?"
tail -n 1 "$out/py-gpu-tests.log"
