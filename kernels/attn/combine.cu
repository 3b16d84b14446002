// Combine of split-KV partials (flash-decoding's second pass), and merge of two attention outputs
// over disjoint key sets (FC_COMBINE_MERGE). Given parts s with normalised outputs O_s and natural-log
// LSE L_s over their own keys, the whole is L = log Σ exp(L_s) and O = Σ exp(L_s - L) O_s. A part
// with L_s = -inf saw no key: its weight is 0 and its O_s is never read (a split that had no key
// block may leave it unwritten). A row whose parts are all -inf gets O = 0 and L = -inf, as the
// forward gives a row that sees no key.
//
// One warp per output row (b, h, i), 8 rows per CTA. Merge: lane l owns head-dim columns l, l + 32,
// ..., so every load and store of a warp is one contiguous run. Split combine: lane l owns columns
// 4l..4l+3 of each 128-column chunk and reads them with one 16-byte load per split, several splits
// at a time (a decode row's 16 splits were 16 dependent L2 round trips).
#include "../common/config.cuh"
#include "../common/params.cuh"
#include "../common/ptx/cvt.cuh"
#include "../common/ptx/griddep.cuh"
#include "softmax.cuh"

namespace combine {

constexpr int kRowsPerCta = 8;
constexpr int kCols = (Traits::kHeadDim + 31) / 32;  // columns per lane (merge: lane l, l + 32, ...)
// Split combine: lane l owns columns 4l..4l+3 of each 128-column chunk (acc[4 * chunk + e]).
constexpr int kChunks = (Traits::kHeadDim + 127) / 128;
constexpr int kSlots = 4;   // LSEs per lane: plan/split.rs MAX_SPLITS = 128 = 4 x 32
constexpr int kUnroll = 8;  // splits whose partial rows are loaded together
static_assert(Traits::kHeadDim % 4 == 0, "combine: 16-byte partial loads");
constexpr int kAcc = kCols > 4 * kChunks ? kCols : 4 * kChunks;

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
  // After a split forward this kernel is launched as its dependent (runtime/ext.rs): the partials
  // are complete past this wait.
  ptx::grid_dependency_wait();
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
  float acc[kAcc];
#pragma unroll
  for (int c = 0; c < kAcc; ++c) acc[c] = 0.f;
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
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int d = lane + 32 * c;
      if (d < Traits::kHeadDim) out[d] = from_f32(acc[c]);
    }
  } else {
    const float* lse_acc = reinterpret_cast<const float*>(p.in_lse[0]);
    const float* o_acc = reinterpret_cast<const float*>(p.in_o[0]);
    // Lane l holds the LSEs of splits l, l + 32, ... in registers (kSlots covers MAX_SPLITS): one
    // round trip for all of them, and the weights come from the same registers.
    float ls[kSlots];
    float m = kNegInf;
#pragma unroll
    for (int k = 0; k < kSlots; ++k) {
      const int s = lane + 32 * k;
      ls[k] = s < p.num_splits ? lse_acc[s * p.accum_split_rows + lse_row] : kNegInf;
      m = fmaxf(m, ls[k]);
    }
    m = warp_max(m);
    float sum = 0.f;
    if (m != kNegInf) {
#pragma unroll
      for (int k = 0; k < kSlots; ++k) sum += __expf(ls[k] - m);
      sum = warp_sum(sum);
    }
    if (p.sinks != 0) {
      // An attention sink joins the sum as one more part whose O is 0 (params.cuh FwdParams::sinks).
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
      float wt[kSlots];
#pragma unroll
      for (int k = 0; k < kSlots; ++k) wt[k] = ls[k] == kNegInf ? 0.f : __expf(ls[k] - lse_total);
      // The partial rows: kUnroll splits' loads are issued before any of their adds, so a row costs
      // a few L2 round trips instead of one per split. Lane l reads columns 4l..4l+3 (+128 per
      // chunk) as one 16-byte load; a split without keys (weight 0) may have left its row
      // unwritten, so its values are read (in bounds) but never used.
#pragma unroll
      for (int k = 0; k < kSlots; ++k) {
        if (32 * k >= p.num_splits) break;
        const int n = min(32, p.num_splits - 32 * k);
        for (int j0 = 0; j0 < n; j0 += kUnroll) {
          float4 v[kUnroll][kChunks];
          float w[kUnroll];
#pragma unroll
          for (int u = 0; u < kUnroll; ++u) {
            const int j = j0 + u;
            w[u] = __shfl_sync(0xffffffffu, wt[k], j & 31);
            const float* in = o_acc + ((32 * k + min(j, n - 1)) * p.accum_split_rows + lse_row) * Traits::kHeadDim;
#pragma unroll
            for (int c = 0; c < kChunks; ++c) {
              const int d = 4 * (lane + 32 * c);
              v[u][c] = d < Traits::kHeadDim ? *reinterpret_cast<const float4*>(in + d) : make_float4(0.f, 0.f, 0.f, 0.f);
            }
          }
#pragma unroll
          for (int u = 0; u < kUnroll; ++u) {
            if (j0 + u >= n || w[u] == 0.f) continue;
#pragma unroll
            for (int c = 0; c < kChunks; ++c) {
              acc[4 * c] += w[u] * v[u][c].x;
              acc[4 * c + 1] += w[u] * v[u][c].y;
              acc[4 * c + 2] += w[u] * v[u][c].z;
              acc[4 * c + 3] += w[u] * v[u][c].w;
            }
          }
        }
      }
    }
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int d = 4 * (lane + 32 * c);
      if (d < Traits::kHeadDim) {
#pragma unroll
        for (int e = 0; e < 4; ++e) out[d + e] = from_f32(acc[4 * c + e]);
      }
    }
  }
  if (p.lse != 0 && lane == 0) reinterpret_cast<float*>(p.lse)[lse_row] = lse_total;
}
