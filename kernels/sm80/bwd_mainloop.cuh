// sm80 backward stages between the GEMMs, and the dQ GEMM. A warp holds its 16 keys x kBlockM
// queries of Sᵀ and dPᵀ in the mma C layout: rows key g and g+8, columns 8j + 2t + {0,1}
// (g = lane/4, t = lane%4). The other GEMMs reuse the forward's gemm_qk and gemm_pv (mainloop.cuh).
#pragma once
#include "../common/ptx/atomic.cuh"
#include "../common/ptx/cvt.cuh"
#include "../common/ptx/ldmatrix.cuh"
#include "../common/ptx/mma.cuh"
#include "../common/tile.cuh"

namespace sm80::bwd {

// Sᵀ -> Pᵀ in place: P = exp2(S · scale_log2 − lse2[query]). lse2 (shared memory, this step's
// queries) is LSE in the log2 domain, +inf for padded rows and rows without a visible key, so those
// columns, like masked scores (−inf), give exactly 0.
template <int M8>
FC_DEVICE void probs(float (&s)[M8][4], const float* lse2, float scale_log2, int lane) {
  const int t = lane & 3;
#pragma unroll
  for (int j = 0; j < M8; ++j) {
    const float2 l = *reinterpret_cast<const float2*>(lse2 + 8 * j + 2 * t);
    s[j][0] = ptx::exp2f_fast(fmaf(s[j][0], scale_log2, -l.x));
    s[j][1] = ptx::exp2f_fast(fmaf(s[j][1], scale_log2, -l.y));
    s[j][2] = ptx::exp2f_fast(fmaf(s[j][2], scale_log2, -l.x));
    s[j][3] = ptx::exp2f_fast(fmaf(s[j][3], scale_log2, -l.y));
  }
}

// dPᵀ -> dSᵀ in place: dS = P ∘ (dP − D[query]), D = rowsum(dO ∘ O) from bwd/prep.cu.
//
// Softcap (FC_SOFTCAP): the logits were c·tanh(S·scale/c), so dS also carries their derivative
// 1 − t², t = tanh(S·scale/c) (the softmax scale itself goes on dQ and dK at the end, as without a
// cap). t is recovered from P = exp2(t · scale_log2 − lse2) (scale_log2 = c·log2 e then), not kept:
// a second score-sized array does not fit beside dK and dV in the registers. Where P underflowed to
// 0 the log is −inf (NaN on padded rows, lse2 = +inf); the clamp to [−1, 1] gives a factor of 0
// there, and dS is 0 anyway.
template <bool Softcap = false, int M8>
FC_DEVICE void dscores(float (&dp)[M8][4], const float (&p)[M8][4], const float* dsum, int lane,
                       const float* lse2 = nullptr, float inv_scale_log2 = 0.f) {
  const int t = lane & 3;
#pragma unroll
  for (int j = 0; j < M8; ++j) {
    const float2 d = *reinterpret_cast<const float2*>(dsum + 8 * j + 2 * t);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      float ds = p[j][e] * (dp[j][e] - (e & 1 ? d.y : d.x));
      if constexpr (Softcap) {
        const float l = lse2[8 * j + 2 * t + (e & 1)];
        const float th = fminf(fmaxf((ptx::log2f_fast(p[j][e]) + l) * inv_scale_log2, -1.f), 1.f);
        ds *= fmaf(-th, th, 1.f);
      }
      dp[j][e] = ds;
    }
  }
}

// Writes the warp's 16 rows of dSᵀ (keys x queries, 16-bit) into the shared tile the dQ GEMM reads.
// A lane's two columns are adjacent, so each row pair is one 4-byte store; the swizzle puts the
// 8 rows of a store phase in different bank groups.
template <class DsTile, bool Bf16>
FC_DEVICE void store_ds(const float (&ds)[DsTile::kCols / 8][4], unsigned char* tile, int warp, int lane) {
  const int r = warp * 16 + (lane >> 2), t = lane & 3;
#pragma unroll
  for (int j = 0; j < DsTile::kCols / 8; ++j) {
    const int col = 8 * j + 2 * t;
    *reinterpret_cast<u32*>(tile + DsTile::offset(r, col)) = ptx::pack2<Bf16>(ds[j][0], ds[j][1]);
    *reinterpret_cast<u32*>(tile + DsTile::offset(r + 8, col)) = ptx::pack2<Bf16>(ds[j][2], ds[j][3]);
  }
}

// A operand of dQ = dS · K, read from dSᵀ (keys x queries) with ldmatrix.trans: matrices
// (queries 0-7, keys 0-7) (queries 8-15, keys 0-7) (queries 0-7, keys 8-15) (queries 8-15, keys 8-15)
// of the warp's 16-query group `group`; lanes 8i..8i+7 give the key rows of matrix i. Returns the
// lane's byte offset for key step 0; key step ks adds ks * 16 rows.
template <class DsTile>
FC_DEVICE u32 lane_addr_ds(int group, int lane) {
  const int row = (lane & 7) + ((lane >> 4) << 3);
  const int c = 2 * group + ((lane >> 3) & 1);
  return (u32)(row * DsTile::kRowElems * 2 + (((c & ~7) | ((c ^ row) & 7)) << 4));
}

// dQ slice (16 queries x Cols head-dim columns) = dS[16 queries, all keys] · K[all keys, slice]. K is
// the B operand stored key-major (like V in P·V): ldmatrix.trans from kt, which starts at the slice.
// Cols is a multiple of 8: a last odd n8 tile is read with ldmatrix.x2 (lanes 0-15 address its
// two key halves, as in the x4 pattern).
template <class DsTile, class KTile, int Cols, bool Bf16>
FC_DEVICE void gemm_dq(float (&acc)[Cols / 8][4], u32 sds, u32 ds_lane, u32 sk, const LaneAddr<KTile>& kt) {
#pragma unroll
  for (int j = 0; j < Cols / 8; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
#pragma unroll
  for (int ks = 0; ks < KTile::kRows / 16; ++ks) {
    u32 a[4];
    ptx::warp::ldmatrix_x4_trans(a, sds + ds_lane + (u32)(ks * 16 * DsTile::kRowElems * 2));
#pragma unroll
    for (int dp = 0; dp < Cols / 16; ++dp) {
      u32 b[4];
      ptx::warp::ldmatrix_x4_trans(b, sk + kt.at(ks, dp));
      ptx::warp::mma_16816<Bf16>(acc[2 * dp], a, b[0], b[1]);
      ptx::warp::mma_16816<Bf16>(acc[2 * dp + 1], a, b[2], b[3]);
    }
    if constexpr (Cols % 16 == 8) {
      u32 b0, b1;
      ptx::warp::ldmatrix_x2_trans(b0, b1, sk + kt.at(ks, Cols / 16));
      ptx::warp::mma_16816<Bf16>(acc[Cols / 8 - 1], a, b0, b1);
    }
  }
}

// Adds the warp's dQ slice into the fp32 accumulator. `rows` points at the slice's first element
// (query row 0 of the group, first column); rows_valid counts the group's rows below seqlen_q.
template <int Cols>
FC_DEVICE void add_dq(const float (&acc)[Cols / 8][4], float* rows, int row_stride, int rows_valid, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < Cols / 8; ++j) {
    float* at = rows + g * row_stride + 8 * j + 2 * t;
    if (g < rows_valid) ptx::red_add_f32x2(at, acc[j][0], acc[j][1]);
    if (g + 8 < rows_valid) ptx::red_add_f32x2(at + 8 * row_stride, acc[j][2], acc[j][3]);
  }
}

}  // namespace sm80::bwd
