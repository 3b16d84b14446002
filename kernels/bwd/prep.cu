// Backward, step 1 of 3 (before sm80/bwd.cu): per query row, in fp32,
//   dsum = rowsum(dO ∘ O) − dlse             (the D_i of dS = P ∘ (dP − D_i); dlse, the loss
//                                            gradient of the LSE, when given, since ∂LSE/∂s = P),
//   lse2 = LSE · log2(e), or +inf for a row that saw no key (LSE −inf) and for padding rows, so
//          the main kernel's P = exp2(S · scale · log2 e − lse2) is exactly 0 there,
// and zeroes the row's fp32 dQ accumulator (only the grid rows before zero_lag when the Hopper
// kernel zeroes the others: sm90/bwd_zero.cuh) and, for the first row of a query block, that
// block's ordering counter of the deterministic mode (or the Hopper kernel's per-grid-row
// counters). Memory-bound: each row is read once with 16-byte loads.
#include "config.cuh"
#include "../common/params.cuh"
#include "../common/ptx/cvt.cuh"

constexpr int kPrepThreads = 128;
// 8 rows per warp (32 per CTA): twice the CTAs of 16, each with half the loads in flight, evens
// out the last wave: +0.3-0.6% on the S1K backward rows on the H200, level at S4K, 4 rows the
// same (bench/NOTES.md session 28 item 4). Mirrored by plan/backward.rs BWD_PREP_ROWS.
constexpr int kPrepRowsPerWarp = 8;
constexpr int kPrepRows = kPrepThreads / 32 * kPrepRowsPerWarp;  // rows per CTA

// One row is kChunks 16-byte chunks, read by kLanesPerRow lanes (a power of two, for the shuffle
// reduction; at least 4, so a pass's rows divide a warp's 8 even at head dim 16); a warp covers
// kRowsPerPass rows at once.
constexpr int kChunks = BwdTraits::kHeadDim / 8;
constexpr int kLanesPerRow = kChunks <= 4 ? 4 : kChunks <= 8 ? 8 : kChunks <= 16 ? 16 : 32;
constexpr int kRowsPerPass = 32 / kLanesPerRow;
static_assert(kChunks <= 32 && kPrepRowsPerWarp % kRowsPerPass == 0, "rows must split evenly into passes");

FC_DEVICE float dot8(u32x4 a, u32x4 b) {
  const u32 x[4] = {a.x, a.y, a.z, a.w}, y[4] = {b.x, b.y, b.z, b.w};
  float acc = 0.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float a0, a1, b0, b1;
    ptx::unpack2<BwdTraits::kBf16>(x[i], a0, a1);
    ptx::unpack2<BwdTraits::kBf16>(y[i], b0, b1);
    acc = fmaf(a0, b0, acc);
    acc = fmaf(a1, b1, acc);
  }
  return acc;
}

extern "C" __global__ void __launch_bounds__(kPrepThreads) fc_bwd_prep(const __grid_constant__ BwdParams p) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int h = blockIdx.y, b = blockIdx.z;
  const int seqlen_q_pad = p.num_m_blocks * BwdTraits::kBlockM;
  const int chunk = lane % kLanesPerRow;
  const i64 bh = (i64)b * p.heads + h;
  const u16* dout = reinterpret_cast<const u16*>(p.dout) + b * p.do_stride_b + h * p.do_stride_h;
  const u16* o = reinterpret_cast<const u16*>(p.o) + b * p.o_stride_b + h * p.o_stride_h;
  const float* lse = reinterpret_cast<const float*>(p.lse) + bh * p.seqlen_q;
  // dQ converted in the Hopper main kernel (sm90/bwd_convert.cuh): its per-grid-row done counters
  // (kv heads x splits per batch, fewer than the heads), in the deterministic counters' scratch.
  if (p.convert_lag > 0 && blockIdx.x == 0 && threadIdx.x == 0 && h < p.kv_heads * p.kv_splits) {
    reinterpret_cast<u32*>(p.dq_sem)[h + p.kv_heads * p.kv_splits * b] = 0u;
  }
  // Accumulator zeroed in the Hopper kernel: its per-grid-row counters, and this kernel zeroes
  // only the rows no earlier row of CTAs zeroes (grid row = bh / heads per row).
  const int heads_per_row = p.heads / (p.kv_heads * p.kv_splits);
  if (p.zero_lag > 0 && blockIdx.x == 0 && threadIdx.x == 0 && h < p.kv_heads * p.kv_splits) {
    bwd_zero_counters(p)[h + p.kv_heads * p.kv_splits * b] = 0u;
  }
  const bool zero_acc = p.zero_lag == 0 || bh < (i64)p.zero_lag * heads_per_row;
  // Every pass's loads first, then the arithmetic and stores, so a thread has all its loads in
  // flight at once (61 -> 60 us at 16K tokens x 2048 values once the accumulator's zeroing left,
  // ~2.2 TB/s: it was hardly bound by latency; bench/NOTES.md session 22 item 3).
  constexpr int kPasses = kPrepRowsPerWarp / kRowsPerPass;
  const int row0 = blockIdx.x * kPrepRows + warp * kPrepRowsPerWarp + lane / kLanesPerRow;
  u32x4 va[kPasses], vc[kPasses];
  float vl[kPasses], vd[kPasses];
#pragma unroll
  for (int pass = 0; pass < kPasses; ++pass) {
    const int row = row0 + pass * kRowsPerPass;
    const bool real = row < p.seqlen_q;
    va[pass] = vc[pass] = u32x4{0u, 0u, 0u, 0u};
    if (real && chunk < kChunks) {
      va[pass] = *reinterpret_cast<const u32x4*>(dout + row * p.do_stride_s + 8 * chunk);
      vc[pass] = *reinterpret_cast<const u32x4*>(o + row * p.o_stride_s + 8 * chunk);
    }
    vl[pass] = real && chunk == 0 ? lse[row] : kNegInf;
    vd[pass] = real && chunk == 0 && p.dlse != 0 ? reinterpret_cast<const float*>(p.dlse)[bh * p.seqlen_q + row] : 0.f;
  }
#pragma unroll
  for (int pass = 0; pass < kPasses; ++pass) {
    const int row = row0 + pass * kRowsPerPass;
    const bool real = row < p.seqlen_q;
    float acc = dot8(va[pass], vc[pass]);  // zeros where not this lane's
    // Every lane takes part in the shuffles; lanes of other rows never mix (xor stays in the group).
#pragma unroll
    for (int off = kLanesPerRow / 2; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (row >= seqlen_q_pad) continue;
    const i64 at = bh * seqlen_q_pad + row;
    if (chunk == 0) {
      reinterpret_cast<float*>(p.dsum)[at] = real ? acc - vd[pass] : 0.f;
      const float l = vl[pass];
      reinterpret_cast<float*>(p.lse2)[at] = l == kNegInf ? __int_as_float(0x7f800000) : l * 1.4426950408889634f;
      if (p.deterministic && row % BwdTraits::kBlockM == 0) {
        reinterpret_cast<u32*>(p.dq_sem)[bh * p.num_m_blocks + row / BwdTraits::kBlockM] = 0u;
      }
    }
    if (real && chunk < kChunks && zero_acc) {
      float* acc_row = reinterpret_cast<float*>(p.dq_accum) + at * BwdTraits::kHeadDim + 8 * chunk;
      const u32x4 zero = {0u, 0u, 0u, 0u};
      reinterpret_cast<u32x4*>(acc_row)[0] = zero;
      reinterpret_cast<u32x4*>(acc_row)[1] = zero;
    }
  }
}
