#!/usr/bin/env bash
# Session 10: MQA 16/1 S2K (0.97 of cuDNN in session 8, 0.93 in session 10's final run) and the
# short d128 rows with keep-P (on for d128 non-causal since this session) forced off, A B A B, on
# the GPU machine after scripts/gpu/build.sh (carry .stage). Log in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
CONFIGS="def: kp0:FLASHCORE_SM90_KEEP_P=0" ONLY="mqa16-1-s2k" SUITE=gqa timeout 100 scripts/gpu/ab.sh > $out/s10-mqa-ab.txt 2>&1
CONFIGS="def: kp0:FLASHCORE_SM90_KEEP_P=0 old@.stage/flashcore-base:" ONLY="mqa16-1-s2k" SUITE=gqa timeout 100 scripts/gpu/ab.sh >> $out/s10-mqa-ab.txt 2>&1
CONFIGS="def: kp0:FLASHCORE_SM90_KEEP_P=0" ONLY="d128-s512 d128-s1k" SUITE=fa timeout 150 scripts/gpu/ab.sh >> $out/s10-mqa-ab.txt 2>&1
sort -s -k3,3 $out/s10-mqa-ab.txt
