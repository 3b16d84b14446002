// sm80 epilogue: normalise O, stage it through the warp's own Q rows in shared memory so global
// stores are 16 bytes wide and row-contiguous, then write LSE.
#pragma once
#include "../common/ptx/cvt.cuh"
#include "../common/tile.cuh"

namespace sm80 {

// rows_valid counts this warp's rows that exist (query index < seqlen_q), from its first row.
template <class QTile, bool Bf16>
FC_DEVICE void store_o(const float (&o)[QTile::kCols / 8][4], const float (&inv_l)[2], unsigned char* smem,
                       int warp, int lane, u16* g, i64 row_stride, int rows_valid) {
  const int gr = lane >> 2, t = lane & 3;
  const int r0 = warp * 16 + gr;
  // Only this warp ever read rows [16*warp, 16*warp+16) of the Q tile, so it may overwrite them
  // without a CTA-wide barrier.
#pragma unroll
  for (int j = 0; j < QTile::kCols / 8; ++j) {
    const int col = 8 * j + 2 * t;
    *reinterpret_cast<u32*>(smem + QTile::offset(r0, col)) = ptx::pack2<Bf16>(o[j][0] * inv_l[0], o[j][1] * inv_l[0]);
    *reinterpret_cast<u32*>(smem + QTile::offset(r0 + 8, col)) =
        ptx::pack2<Bf16>(o[j][2] * inv_l[1], o[j][3] * inv_l[1]);
  }
  __syncwarp();
  constexpr int kTotal = 16 * QTile::kChunks;
#pragma unroll
  for (int c = lane; c < kTotal; c += 32) {
    const int row = c / QTile::kChunks;
    const int col = (c % QTile::kChunks) * 8;
    if (row < rows_valid) {
      *reinterpret_cast<u32x4*>(g + row * row_stride + col) =
          *reinterpret_cast<const u32x4*>(smem + QTile::offset(warp * 16 + row, col));
    }
  }
}

// Split-KV partial (fp32, normalised by this split's own row sums): g points at the warp's first
// row, rows are HeadDim floats apart; rows at or past rows_valid are skipped. Straight from the
// accumulators: a quad covers 32 contiguous bytes of a row per 8-column group, whole sectors.
template <int HeadDim>
FC_DEVICE void store_o_accum(const float (&o)[HeadDim / 8][4], const float (&inv_l)[2], float* g, int rows_valid,
                             int lane) {
  const int gr = lane >> 2, t = lane & 3;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = gr + 8 * r;
    if (row >= rows_valid) continue;
#pragma unroll
    for (int j = 0; j < HeadDim / 8; ++j) {
      f32x2 x;
      x.x = o[j][2 * r] * inv_l[r];
      x.y = o[j][2 * r + 1] * inv_l[r];
      *reinterpret_cast<f32x2*>(g + (i64)row * HeadDim + 8 * j + 2 * t) = x;
    }
  }
}

// lse points at this (batch, head)'s row 0; row0 is the warp's first query index.
FC_DEVICE void store_lse(float* lse, const float (&v)[2], int row0, int seqlen_q, int lane) {
  if ((lane & 3) != 0) return;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = row0 + (lane >> 2) + 8 * r;
    if (row < seqlen_q) lse[row] = v[r];
  }
}

}  // namespace sm80
