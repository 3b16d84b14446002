// ldmatrix (PTX ISA 9.7.14.5.15, sm_75+): a warp loads four 8x8 b16 matrices from shared memory.
// Lanes 8i..8i+7 supply the row addresses of matrix i; register i receives matrix i.
#pragma once
#include "../types.cuh"
#include "cvt.cuh"

namespace ptx::warp {

FC_DEVICE void ldmatrix_x4(u32 (&r)[4], u32 smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem));
}

// Transposed: lane l receives elements (2*(l%4), l/4) and (2*(l%4)+1, l/4) of each matrix, which is
// the B-fragment layout of mma.m16n8k16 when the matrix is stored K-major (rows = reduction index).
FC_DEVICE void ldmatrix_x4_trans(u32 (&r)[4], u32 smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem));
}

// Two transposed matrices (an n8 B fragment); lanes 0-15 supply the row addresses, the addresses of
// lanes 16-31 are ignored.
FC_DEVICE void ldmatrix_x2_trans(u32& r0, u32& r1, u32 smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(smem));
}

// stmatrix (PTX ISA 9.7.14.5.16, sm_90+), the store counterpart of ldmatrix_x4: register i holds
// lane l's elements (l/4, 2*(l%4)) and (l/4, 2*(l%4)+1) of matrix i (the mma C/A fragment layout),
// and the 16-byte row that lane 8i+j addresses receives row j of matrix i.
FC_DEVICE void stmatrix_x4(u32 smem, u32 r0, u32 r1, u32 r2, u32 r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(smem), "r"(r0), "r"(r1), "r"(r2),
               "r"(r3)
               : "memory");
}

// The same, transposed: the 16-byte row that lane 8i+j addresses receives column j of matrix i.
FC_DEVICE void stmatrix_x4_trans(u32 smem, u32 r0, u32 r1, u32 r2, u32 r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(smem), "r"(r0), "r"(r1),
               "r"(r2), "r"(r3)
               : "memory");
}

// A warp's 16 rows of an mma / wgmma accumulator (N8 n8 tiles; rows row0 + g and row0 + g + 8,
// scaled by s0 and s1), packed to 16 bits into a tile of 128-byte rows in the TMA / wgmma 128-byte
// swizzle (16-byte chunk c of row r at c ^ (r % 8)), 64-value blocks `block_bytes` apart: one
// stmatrix per pair of n8 tiles (i, i + 1). Matrix m is rows 8 (m & 1) .. and tile i + (m >> 1),
// whose packed halves are stmatrix's register layout already; lane 8m + j addresses its row j at
// chunk (i % 8) ^ (m >> 1) (i is even, so a pair never straddles a block). A matrix's 8 rows sit
// on 8 distinct chunks: no bank conflicts. The address is swizzle128(row, (i % 8) ^ (lane >> 4))
// with the lane's XOR term formed once.
template <bool Bf16, int N8>
FC_DEVICE void stmatrix_rows_swizzle128(const float (&acc)[N8][4], float s0, float s1, u32 tile, int block_bytes,
                                        int row0, int lane) {
  static_assert(N8 % 2 == 0, "n8 tiles in pairs");
  const int row = row0 + (lane & 7) + 8 * ((lane >> 3) & 1);
  const int y = ((lane >> 4) ^ row) & 7;
#pragma unroll
  for (int i = 0; i < N8; i += 2) {
    const u32 at = tile + (i / 8) * block_bytes + row * 128 + (((i % 8) ^ y) << 4);
    stmatrix_x4(at, pack2<Bf16>(acc[i][0] * s0, acc[i][1] * s0), pack2<Bf16>(acc[i][2] * s1, acc[i][3] * s1),
                pack2<Bf16>(acc[i + 1][0] * s0, acc[i + 1][1] * s0), pack2<Bf16>(acc[i + 1][2] * s1, acc[i + 1][3] * s1));
  }
}

}  // namespace ptx::warp
