// Combine of split-KV partials (flash-decoding's second pass), and merge of two attention outputs
// over disjoint key sets (FC_COMBINE_MERGE). Given parts s with normalised outputs O_s and natural-log
// LSE L_s over their own keys, the whole is L = log Σ exp(L_s) and O = Σ exp(L_s - L) O_s. A part
// with L_s = -inf saw no key: its weight is 0 and its O_s is never read (a split that had no key
// block may leave it unwritten). A row whose parts are all -inf gets O = 0 and L = -inf, as the
// forward gives a row that sees no key.
//
// One warp per output row (b, h, i), 8 rows per CTA; lane l owns head-dim columns l, l + 32, ...,
// so every load and store of a warp is one contiguous run.
#include "../common/config.cuh"
#include "../common/params.cuh"
#include "../common/ptx/cvt.cuh"
#include "softmax.cuh"

namespace combine {

constexpr int kRowsPerCta = 8;
constexpr int kCols = (Traits::kHeadDim + 31) / 32;  // columns per lane

FC_DEVICE float to_f32(u16 x) {
  float lo, hi;
  ptx::unpack2<Traits::kBf16>(x, lo, hi);
  return lo;
}

FC_DEVICE u16 from_f32(float x) { return (u16)(ptx::pack2<Traits::kBf16>(x, 0.f) & 0xffffu); }

FC_DEVICE float warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

FC_DEVICE float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

}  // namespace combine

// (256, 1): without a minimum-blocks hint ptxas held this kernel to 32 registers and spilled once
// the sink joined the sum.
extern "C" __global__ void __launch_bounds__(256, 1) fc_combine(const __grid_constant__ CombineParams p) {
  using namespace combine;
  const int lane = threadIdx.x & 31;
  const i64 w = (i64)blockIdx.x * kRowsPerCta + (threadIdx.x >> 5);
  if (w >= (i64)p.batch * p.heads * p.seqlen_q) return;
  const int i = (int)(w % p.seqlen_q);
  const int h = (int)((w / p.seqlen_q) % p.heads);
  const int b = (int)(w / ((i64)p.seqlen_q * p.heads));
  // Row i of sequence b: packed (varlen) rows start at cu_seqlens_q[b], clamped to the output.
  i64 out_row = i, lse_row = b * p.lse_stride_b + h * p.lse_stride_h + i;
  i64 o_base = b * p.o_stride_b;
  if (p.cu_seqlens_q != 0) {
    const int* cu = reinterpret_cast<const int*>(p.cu_seqlens_q);
    const int start = min(max(cu[b], 0), p.total_q);
    const int len = min(max(cu[b + 1] - start, 0), p.total_q - start);
    if (i >= len) return;
    out_row = start + i;
    lse_row = h * p.lse_stride_h + start + i;
    o_base = 0;
  }
  u16* out = reinterpret_cast<u16*>(p.o) + o_base + out_row * p.o_stride_s + h * p.o_stride_h;
  float acc[kCols];
#pragma unroll
  for (int c = 0; c < kCols; ++c) acc[c] = 0.f;
  float lse_total;

  if constexpr (Traits::kCombineMerge) {
    float l[2];
#pragma unroll
    for (int s = 0; s < 2; ++s) l[s] = reinterpret_cast<const float*>(p.in_lse[s])[lse_row];
    const float m = fmaxf(l[0], l[1]);
    if (m == kNegInf) {
      lse_total = kNegInf;
    } else {
      const float e0 = __expf(l[0] - m), e1 = __expf(l[1] - m);
      const float sum = e0 + e1;
      lse_total = m + __logf(sum);
      const float wt[2] = {e0 / sum, e1 / sum};
#pragma unroll
      for (int s = 0; s < 2; ++s) {
        if (wt[s] == 0.f) continue;
        const u16* in = reinterpret_cast<const u16*>(p.in_o[s]) + b * p.in_stride_b[s] + i * p.in_stride_s[s] +
                        h * p.in_stride_h[s];
#pragma unroll
        for (int c = 0; c < kCols; ++c) {
          const int d = lane + 32 * c;
          if (d < Traits::kHeadDim) acc[c] += wt[s] * to_f32(in[d]);
        }
      }
    }
  } else {
    const float* lse_acc = reinterpret_cast<const float*>(p.in_lse[0]);
    const float* o_acc = reinterpret_cast<const float*>(p.in_o[0]);
    // Lanes hold the splits' LSEs (32 at a time) for the max and the sum.
    float m = kNegInf;
    for (int s0 = 0; s0 < p.num_splits; s0 += 32) {
      const int s = s0 + lane;
      if (s < p.num_splits) m = fmaxf(m, lse_acc[s * p.accum_split_rows + lse_row]);
    }
    m = warp_max(m);
    float sum = 0.f;
    if (m != kNegInf) {
      for (int s0 = 0; s0 < p.num_splits; s0 += 32) {
        const int s = s0 + lane;
        if (s < p.num_splits) sum += __expf(lse_acc[s * p.accum_split_rows + lse_row] - m);
      }
      sum = warp_sum(sum);
    }
    if (p.sinks != 0) {
      // An attention sink joins the sum as one more part whose O is 0 (params.cuh FwdParams::sinks).
      // Read after the splits' loop so it holds no register across it.
      const float sink = reinterpret_cast<const float*>(p.sinks)[h];
      const float m2 = fmaxf(m, sink);
      if (m2 != kNegInf) {
        sum = (m == kNegInf ? 0.f : sum * __expf(m - m2)) + __expf(sink - m2);
        m = m2;
      }
    }
    if (m == kNegInf) {
      lse_total = kNegInf;
    } else {
      lse_total = m + __logf(sum);
      for (int s = 0; s < p.num_splits; ++s) {
        const float ls = lse_acc[s * p.accum_split_rows + lse_row];
        if (ls == kNegInf) continue;
        const float wt = __expf(ls - lse_total);
        const float* in = o_acc + (s * p.accum_split_rows + lse_row) * Traits::kHeadDim;
#pragma unroll
        for (int c = 0; c < kCols; ++c) {
          const int d = lane + 32 * c;
          if (d < Traits::kHeadDim) acc[c] += wt * in[d];
        }
      }
    }
  }
#pragma unroll
  for (int c = 0; c < kCols; ++c) {
    const int d = lane + 32 * c;
    if (d < Traits::kHeadDim) out[d] = from_f32(acc[c]);
  }
  if (p.lse != 0 && lane == 0) reinterpret_cast<float*>(p.lse)[lse_row] = lse_total;
}
