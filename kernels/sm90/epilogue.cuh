// Hopper epilogue: normalise O and write it, either straight from the accumulator registers or
// staged in shared memory and stored by TMA (Sm90::kTmaStore).
#pragma once
#include "../common/params.cuh"
#include "../common/ptx/cvt.cuh"
#include "../common/ptx/ldmatrix.cuh"
#include "../common/ptx/tma.cuh"
#include "config.cuh"

namespace sm90 {

// o holds this warp's 16 rows (row0 = first) in the wgmma D layout; out points at row row0.
FC_DEVICE void store_o(const float (&o)[Sm90::kHeadDim / 8][4], const float (&inv_l)[2], u16* out, i64 row_stride,
                       int rows_valid, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = g + 8 * r;
    if (row >= rows_valid) continue;
    u16* dst = out + row * row_stride + 2 * t;
#pragma unroll
    for (int i = 0; i < Sm90::kHeadDim / 8; ++i) {
      *reinterpret_cast<u32*>(dst + 8 * i) =
          ptx::pack2<Traits::kBf16>(o[i][2 * r] * inv_l[r], o[i][2 * r + 1] * inv_l[r]);
    }
  }
}

// Split-KV partial (FC_INFER): this warp's 16 rows of normalised O in fp32, rows of head-dim floats
// from `out` (the warp's first row); each quad writes 32 contiguous bytes per row and n8 tile.
FC_DEVICE void store_o_partial(const float (&o)[Sm90::kHeadDim / 8][4], const float (&inv_l)[2], float* out,
                               int rows_valid, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = g + 8 * r;
    if (row >= rows_valid) continue;
    float* dst = out + row * Sm90::kHeadDim + 2 * t;
#pragma unroll
    for (int i = 0; i < Sm90::kHeadDim / 8; ++i) {
      *reinterpret_cast<f32x2*>(dst + 8 * i) = f32x2{o[i][2 * r] * inv_l[r], o[i][2 * r + 1] * inv_l[r]};
    }
  }
}

// Named barriers 4.. : one per consumer warpgroup, for its epilogue (1 .. 3 are the ping-pong turns).
constexpr int kBarEpilogue0 = 4;

// TMA-store epilogue: this warpgroup's 64 x head-dim output, normalised, goes to its shared-memory
// buffer in the 128-byte swizzle layout of the O tensor map's box, then one thread stores it.
// tw is the thread's index in the warpgroup; row0 the warpgroup's first query row.
FC_DEVICE void store_o_tma(const float (&o)[Sm90::kHeadDim / 8][4], const float (&inv_l)[2], const Sm90Params& p,
                           u32 buf, int wg, int tw, int row0, int h, int b) {
  const int warp = tw >> 5, lane = tw & 31;
  // The previous tile's store must have finished reading the buffer before it is overwritten.
  if (tw == 0) ptx::tma_store_wait_read<0>();
  ptx::named_bar_sync(kBarEpilogue0 + wg, 128);
  // A quarter of the shared-memory instructions of 4-byte stores, at the tile boundary where the
  // next tile's first GEMM waits on this epilogue (bench/NOTES.md, session 16).
  ptx::warp::stmatrix_rows_swizzle128<Traits::kBf16>(o, inv_l[0], inv_l[1], buf, 64 * 128, warp * 16, lane);
  ptx::fence_proxy_async_smem();
  ptx::named_bar_sync(kBarEpilogue0 + wg, 128);
  if (tw == 0) {
#pragma unroll
    for (int db = 0; db < Sm90::kDBlocks; ++db) {
      ptx::tma_store_4d(&p.tma_o, buf + db * 64 * 128, db * 64, row0, h, b);
    }
    ptx::tma_store_commit();
  }
}

}  // namespace sm90
