#!/usr/bin/env bash
# Session 12: correctness with a forward knob on (Rust GPU tests, validate --quick), then A B A B
# against it off on the rows where tiles are short. Run twice this session, each on the build that
# had the knob (both were taken out again afterwards; bench/NOTES.md, session 12):
#   TAG=earlyqk KNOB=FLASHCORE_SM90_EARLY_QK=1  item 4, commit 4b23fe6: correct, 5-11% slower
#   TAG=storer  KNOB=FLASHCORE_SM90_STORER=1    item 7, commit 449654b: correct, within +-1.5%
# (the storer run used the fa rows d128-s512 d128-s2k d128-s4k d64-s512).
# On the GPU machine after scripts/gpu/build.sh (carry .stage).   PART=tests|ab (default: both)
set -uo pipefail
. scripts/gpu/env.sh
part=${PART:-all}
tag=${TAG:?} knob=${KNOB:?}
if [[ $part == all || $part == tests ]]; then
  env "$knob" timeout 200 .stage/gpu-tests --test-threads 1 > "$out/s12-$tag-tests.txt" 2>&1
  echo "tests rc=$?" >> "$out/s12-$tag-tests.txt"
  env "$knob" timeout 100 .stage/flashcore validate --quick >> "$out/s12-$tag-tests.txt" 2>&1
  echo "validate rc=$?" >> "$out/s12-$tag-tests.txt"
  grep -E "rc=|FAIL|panicked|test result" "$out/s12-$tag-tests.txt" | head
fi
if [[ $part == all || $part == ab ]]; then
  cfg="base: $tag:$knob"
  CONFIGS="$cfg" ONLY="${FA_ROWS:-d128-s512 d128-s1k d128-s2k d128-s4k d64-s512 d64-s4k}" SUITE=fa \
    timeout 300 scripts/gpu/ab.sh > "$out/s12-$tag-ab.txt" 2>&1
  CONFIGS="$cfg" ONLY="seed-h96" SUITE=seed timeout 60 scripts/gpu/ab.sh >> "$out/s12-$tag-ab.txt" 2>&1
  CONFIGS="$cfg" ONLY="qa" SUITE=gqa timeout 90 scripts/gpu/ab.sh >> "$out/s12-$tag-ab.txt" 2>&1
  sort -s -k3,3 "$out/s12-$tag-ab.txt" | awk '{k=$1" "$3; v[k]=v[k]" "$4; r[$3]=1; c[$1]=1} END {for (x in r) {printf "%-20s", x; for (y in c) printf " %s:%s", y, v[y" "x]; print ""}}' | sort
fi
