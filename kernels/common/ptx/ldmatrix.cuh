// ldmatrix (PTX ISA 9.7.14.5.15, sm_75+): a warp loads four 8x8 b16 matrices from shared memory.
// Lanes 8i..8i+7 supply the row addresses of matrix i; register i receives matrix i.
#pragma once
#include "../types.cuh"

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

}  // namespace ptx::warp
