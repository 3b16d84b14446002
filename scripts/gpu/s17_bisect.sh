#!/usr/bin/env bash
# Session 17: is the d64 short causal forward's drop since session 10 (S512 causal 245 -> ~231 TF/s,
# S1K causal 323 -> ~305, put down then to the machine) in the code? CLI binaries of session 10's
# last commit (df04452), the commit before the causal sections (1fd74fa), the sections (b9c33b8)
# and HEAD, built here into .stage/flashcore-<commit>; A B A B on the d64 causal rows and controls,
# without the LSE (as the Python bench). GPU machine; carry .stage.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_BENCH_LSE=0
CONFIGS="s10@.stage/flashcore-df04452: pre@.stage/flashcore-1fd74fa: sect@.stage/flashcore-b9c33b8: head@.stage/flashcore:" \
  SUITE=all ONLY="${ONLY:-d64-s512 d64-s1k-causal d64-s2k-causal seed-h96 d128-s512-causal}" \
  bash scripts/gpu/ab.sh | tee "$out/s17-bisect-ab.txt"
