#!/usr/bin/env bash
# Session 17: the Python bench with the backends of a row timed in rounds (_bench.time_rounds, the
# new default), every suite, beside the old block order (`--sequential`) on the suites whose short
# rows follow long ones (gqa: MQA after GQA; seed). GPU machine, after build_wheel.sh; carry .stage.
# Logs and JSON in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy "$(ls .stage/flashcore-*.whl | head -n 1)" || exit 1
timeout 120 python3 -m pytest -p no:cacheprovider -q python/tests/test_gpu_backward.py -m gpu -k bench_backward \
  > "$out/s17-rounds-pytest.txt" 2>&1
echo "pytest rc=$? $(tail -n 1 "$out/s17-rounds-pytest.txt")"
bench() {  # tag, suite, limit, extra args
  timeout "$3" python3 -m flashcore bench --suite "$2" ${4:-} --json "$out/$day-$gpu-s17-$1-python-$2.json" \
    > "$out/s17-$1-python-$2.log" 2>&1
  echo "bench $1 $2 rc=$?"
}
for s in fa seed gqa long; do bench rounds $s 200; done
for s in gqa seed; do bench sequential $s 90 --sequential; done
for s in bwd decode varlen; do bench rounds $s 200; done
bench rounds fp8 150
# The device tool returns at most 8 files: the logs and JSON travel as one archive.
tar czf /tmp/s17-rounds.tgz -C "$out" . && rm -rf "${out:?}"/* && mv /tmp/s17-rounds.tgz "$out/"
