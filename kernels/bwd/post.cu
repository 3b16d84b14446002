// Backward, step 3 of 3 (after the main kernel, sm80/bwd.cu or sm90/bwd.cu):
//   dQ = softmax_scale · dQ_accum, converted from the fp32 accumulator [B, H, Sq_pad, D] (its
//   8-float chunks swizzled per row when the Hopper kernel adds dQ through shared memory,
//   BwdTraits::dq_chunk) to q's dtype in dq's layout;
//   when the Hopper kernel split a GQA group over kv_splits CTAs: dK and dV = the sum of the
//   splits' fp32 partials [2][kv_splits][B, Hkv, Sk_pad, D], added in split order (so the result
//   is bitwise reproducible), converted to k's dtype in dk's and dv's layouts.
// One thread per 8 values of a row; grid (chunks, heads, batch) covers both jobs (kv heads <= heads).
#include "config.cuh"
#include "../common/params.cuh"
#include "../common/ptx/cvt.cuh"

constexpr int kPostThreads = 128;
constexpr int kChunks = BwdTraits::kHeadDim / 8;

FC_DEVICE u32x4 pack8(const float (&x)[8], float s) {
  return {ptx::pack2<BwdTraits::kBf16>(x[0] * s, x[1] * s), ptx::pack2<BwdTraits::kBf16>(x[2] * s, x[3] * s),
          ptx::pack2<BwdTraits::kBf16>(x[4] * s, x[5] * s), ptx::pack2<BwdTraits::kBf16>(x[6] * s, x[7] * s)};
}

FC_DEVICE void load8(float (&x)[8], const float* src) {
  const u32x4 lo = reinterpret_cast<const u32x4*>(src)[0];
  const u32x4 hi = reinterpret_cast<const u32x4*>(src)[1];
  const u32 w[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
  for (int i = 0; i < 8; ++i) x[i] = __uint_as_float(w[i]);
}

extern "C" __global__ void __launch_bounds__(kPostThreads) fc_bwd_post(const __grid_constant__ BwdParams p) {
  const int h = blockIdx.y;
  const i64 idx = (i64)blockIdx.x * kPostThreads + threadIdx.x;  // over (row, chunk) of one (b, h)
  const i64 row = idx / kChunks;
  const int chunk = (int)(idx % kChunks);
  // When the Hopper main kernel converted dQ of its grid rows (kv head x split, batch) below
  // convert_rows (sm90/bwd_convert.cuh), this grid starts at the batch of the first one left and
  // skips the heads converted already; it has no dK / dV partials then (kv_splits == 1).
  const int ny = p.kv_heads * p.kv_splits;
  const int b = p.convert_rows > 0 ? p.convert_rows / ny + (int)blockIdx.z : (int)blockIdx.z;
  const int group = p.heads / p.kv_heads, per_cta = group / p.kv_splits;
  const bool converted = p.convert_rows > 0 && (h / group) * p.kv_splits + (h % group) / per_cta + ny * b < p.convert_rows;
  if (row < p.seqlen_q && !converted) {
    const i64 seqlen_q_pad = (i64)p.num_m_blocks * BwdTraits::kBlockM;
    float x[8];
    load8(x, reinterpret_cast<const float*>(p.dq_accum) +
                 (((i64)b * p.heads + h) * seqlen_q_pad + row) * BwdTraits::kHeadDim +
                 8 * BwdTraits::dq_chunk(chunk, (int)row));
    u16* dq = reinterpret_cast<u16*>(p.dq) + b * p.dq_stride_b + h * p.dq_stride_h + row * p.dq_stride_s;
    *reinterpret_cast<u32x4*>(dq + 8 * chunk) = pack8(x, p.scale);
  }
  if (p.kv_splits > 1 && h < p.kv_heads && row < p.seqlen_k) {
    const i64 seqlen_k_pad = (i64)p.num_n_blocks * BwdTraits::kBlockN;
    const i64 part = (i64)p.batch * p.kv_heads * seqlen_k_pad * BwdTraits::kHeadDim;
    const float* src = reinterpret_cast<const float*>(p.dkv_accum) +
                       (((i64)b * p.kv_heads + h) * seqlen_k_pad + row) * BwdTraits::kHeadDim + 8 * chunk;
#pragma unroll
    for (int which = 0; which < 2; ++which) {  // dK (already scaled), then dV
      float acc[8], x[8];
      load8(acc, src);
      for (int s = 1; s < p.kv_splits; ++s) {
        load8(x, src + s * part);
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[i] += x[i];
      }
      u16* dst = which == 0
                     ? reinterpret_cast<u16*>(p.dk) + b * p.dk_stride_b + h * p.dk_stride_h + row * p.dk_stride_s
                     : reinterpret_cast<u16*>(p.dv) + b * p.dv_stride_b + h * p.dv_stride_h + row * p.dv_stride_s;
      *reinterpret_cast<u32x4*>(dst + 8 * chunk) = pack8(acc, 1.f);
      src += p.kv_splits * part;
    }
  }
}
