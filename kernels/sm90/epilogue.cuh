// Hopper epilogue: normalise O and write it and LSE straight from the accumulator registers.
#pragma once
#include "../common/ptx/cvt.cuh"
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

}  // namespace sm90
