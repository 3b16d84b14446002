// Consumer warpgroups: S = Q·Kᵀ with both operands in shared memory, online softmax in registers,
// O += P·V with P straight from registers (the S accumulator layout is the wgmma A-fragment layout).
#pragma once
#include "../attn/mask.cuh"
#include "../attn/softmax.cuh"
#include "../common/ptx/cvt.cuh"
#include "../common/ptx/wgmma.cuh"
#include "smem.cuh"

namespace sm90::consumer {

constexpr int kN8 = Sm90::kBlockN / 8;
constexpr int kD8 = Sm90::kHeadDim / 8;

// S (this warpgroup's 64 rows x block_n) = Q · Kᵀ over head-dim steps of 16.
FC_DEVICE void gemm_qk(float (&s)[kN8][4], const Sm90Smem& sm, int wg, int stage) {
  ptx::warpgroup::fence();
#pragma unroll
  for (int kk = 0; kk < Sm90::kHeadDim / 16; ++kk) {
    // Within a 128-byte row a k16 step is 32 bytes; every 4 steps move to the next d block.
    const u32 qa = sm.q + (kk / 4) * Sm90::kBlockM * 128 + wg * 64 * 128 + (kk % 4) * 32;
    const u32 ka = sm.k(stage) + (kk / 4) * Sm90::kBlockN * 128 + (kk % 4) * 32;
    ptx::warpgroup::wgmma_ss<Sm90::kBlockN, Traits::kBf16>(s, ptx::warpgroup::make_desc(qa, 16, 1024),
                                                          ptx::warpgroup::make_desc(ka, 16, 1024), kk > 0);
  }
  ptx::warpgroup::commit();
}

// O (64 rows x head dim) += P · V over key steps of 16. V is [key][d] in smem, i.e. MN-major for
// this GEMM (transposed B): 8-key groups 1024 bytes apart, d blocks of 64 block_n*128 bytes apart.
FC_DEVICE void gemm_pv(float (&o)[kD8][4], const float (&p)[kN8][4], const Sm90Smem& sm, int stage) {
  ptx::warpgroup::fence();
#pragma unroll
  for (int kk = 0; kk < Sm90::kBlockN / 16; ++kk) {
    u32 a[4];
    a[0] = ptx::pack2<Traits::kBf16>(p[2 * kk][0], p[2 * kk][1]);
    a[1] = ptx::pack2<Traits::kBf16>(p[2 * kk][2], p[2 * kk][3]);
    a[2] = ptx::pack2<Traits::kBf16>(p[2 * kk + 1][0], p[2 * kk + 1][1]);
    a[3] = ptx::pack2<Traits::kBf16>(p[2 * kk + 1][2], p[2 * kk + 1][3]);
    const u32 va = sm.v(stage) + kk * 16 * 128;
    ptx::warpgroup::wgmma_rs<Sm90::kHeadDim, Traits::kBf16, 1>(
        o, a, ptx::warpgroup::make_desc(va, Sm90::kBlockN * 128, 1024));
  }
  ptx::warpgroup::commit();
}

}  // namespace sm90::consumer
