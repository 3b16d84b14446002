#!/usr/bin/env bash
# Kernel compile check without a GPU: every standard variant, for sm_80 and sm_90a, through NVRTC
# from the pip package nvidia-cuda-nvrtc; then cuobjdump on each CUBIN. Fails on a compile error,
# a register spill (non-zero STACK or LOCAL, or LDL/STL in the SASS), a kernel without tensor-core
# MMAs (HMMA/HGMMA/QGMMA) in its SASS (except the elementwise backward prep/post, combine/merge and
# FP8 V-transpose kernels), a Hopper (fwd_sm90, bwd_sm90) kernel without wgmma (HGMMA), or an FP8
# forward without e4m3 wgmma (QGMMA); then scripts/check_smem.py: each kernel's shared-memory plan
# against the bytes the host launches it with.
# Usage: scripts/check_kernels.sh FLASHCORE_BIN   (needs FLASHCORE_NVRTC_PATH and cuobjdump/nvdisasm on PATH)
# WARMUP_ARGS replaces the warmup's arguments (default: both archs, every variant), e.g. to check a
# knob's kernels: WARMUP_ARGS="--arch sm_90a --only dqsmem".
set -euo pipefail
bin=${1:?usage: check_kernels.sh path/to/flashcore}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# shellcheck disable=SC2086
FLASHCORE_CACHE_DIR="$out/cache" "$bin" warmup ${WARMUP_ARGS:---arch sm_80,sm_90a} --out-dir "$out/cubin" | tail -n 1
fail=0
n=0
for f in "$out"/cubin/*.cubin; do
  n=$((n + 1))
  name=$(basename "$f" .cubin)
  usage=$(cuobjdump -res-usage "$f" | grep -oE 'REG:[0-9]+ STACK:[0-9]+ SHARED:[0-9]+ LOCAL:[0-9]+' | head -n 1)
  stack=$(sed -E 's/.*STACK:([0-9]+).*/\1/' <<<"$usage")
  local_b=$(sed -E 's/.*LOCAL:([0-9]+).*/\1/' <<<"$usage")
  sass=$(cuobjdump -sass "$f")
  mma=$(grep -cE '\b(HMMA|HGMMA|QGMMA)\b' <<<"$sass" || true)
  spills=$(grep -cE '\b(LDL|STL)(\.[0-9A-Z.]+)?\b' <<<"$sass" || true)
  status=ok
  if [ "$stack" != 0 ] || [ "$local_b" != 0 ] || [ "$spills" != 0 ]; then status="SPILL"; fail=1; fi
  # The backward's prep and post kernels, the split-KV combine / merge kernels and the FP8 forward's
  # V transpose are elementwise (no GEMM); every other kernel must use tensor cores.
  case "$name" in
    bwd_prep-*|bwd_post-*|combine-*|merge-*|fp8_vt-*) ;;
    *) if [ "$mma" = 0 ]; then status="$status NO-MMA"; fail=1; fi ;;
  esac
  case "$name" in
    fwd_sm90-*|bwd_sm90-*) grep -qE '\bHGMMA\b' <<<"$sass" || { status="$status NO-HGMMA"; fail=1; } ;;
    fwd_sm90_fp8-*) grep -qE '\bQGMMA\b' <<<"$sass" || { status="$status NO-QGMMA"; fail=1; } ;;
  esac
  printf '%-52s %-40s mma=%-4s ldl/stl=%-3s %s\n' "$name" "$usage" "$mma" "$spills" "$status"
done
echo "$n kernels checked"
if [ "$n" = 0 ]; then echo "no kernels compiled"; exit 1; fi
python3 "$(dirname "$0")/check_smem.py" "$out/cubin" || fail=1
exit $fail
