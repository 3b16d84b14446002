// Backward, step 3 of 3 (after sm80/bwd.cu): dQ = softmax_scale · dQ_accum, converted from the
// fp32 accumulator [B, H, Sq_pad, D] to q's dtype in dq's layout. One thread per 8 values.
#include "config.cuh"
#include "../common/params.cuh"
#include "../common/ptx/cvt.cuh"

constexpr int kPostThreads = 128;

extern "C" __global__ void __launch_bounds__(kPostThreads) fc_bwd_post(const __grid_constant__ BwdParams p) {
  constexpr int kChunks = BwdTraits::kHeadDim / 8;
  const int h = blockIdx.y, b = blockIdx.z;
  const i64 idx = (i64)blockIdx.x * kPostThreads + threadIdx.x;  // over (row, chunk) of one (b, h)
  const i64 row = idx / kChunks;
  const int chunk = (int)(idx % kChunks);
  if (row >= p.seqlen_q) return;
  const i64 seqlen_q_pad = (i64)p.num_m_blocks * BwdTraits::kBlockM;
  const float* src = reinterpret_cast<const float*>(p.dq_accum) +
                     (((i64)b * p.heads + h) * seqlen_q_pad + row) * BwdTraits::kHeadDim + 8 * chunk;
  const u32x4 lo = reinterpret_cast<const u32x4*>(src)[0];
  const u32x4 hi = reinterpret_cast<const u32x4*>(src)[1];
  const float s = p.scale;
  auto pk = [&](u32 a, u32 c) { return ptx::pack2<BwdTraits::kBf16>(__uint_as_float(a) * s, __uint_as_float(c) * s); };
  const u32x4 out = {pk(lo.x, lo.y), pk(lo.z, lo.w), pk(hi.x, hi.y), pk(hi.z, hi.w)};
  u16* dq = reinterpret_cast<u16*>(p.dq) + b * p.dq_stride_b + h * p.dq_stride_h + row * p.dq_stride_s;
  *reinterpret_cast<u32x4*>(dq + 8 * chunk) = out;
}
