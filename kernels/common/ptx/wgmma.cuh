// wgmma (PTX ISA 9.7.15, sm_90a only): ordering fences and shared-memory matrix descriptors.
// The mma_async wrappers themselves are generated (wgmma_ops.cuh).
#pragma once
#include "../types.cuh"
#include "wgmma_ops.cuh"

namespace ptx::warpgroup {

// Orders this thread's earlier register writes to accumulators/A fragments before the next
// wgmma.mma_async reads them (9.7.15.7.1). Needed after softmax rescales O, for example.
FC_DEVICE void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
FC_DEVICE void commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most N committed wgmma groups are pending; only then may accumulators be read.
template <int N>
FC_DEVICE void wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// wgmma reads its register operands and writes its accumulators asynchronously, after the asm
// statement "returns". The compiler does not know that: without a barrier it may move reads of
// accumulators before the wait, or reuse an A-fragment register while the tensor core still reads
// it. An empty asm that "modifies" each register, placed after the wait (and before the issue),
// pins those uses in order.
template <int N>
FC_DEVICE void fence_operand(float (&d)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+f"(d[i][j])::"memory");
  }
}
FC_DEVICE void fence_operand(float (&d)[4]) {
#pragma unroll
  for (int j = 0; j < 4; ++j) asm volatile("" : "+f"(d[j])::"memory");
}
template <int N>
FC_DEVICE void fence_operand(u32 (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(r[i][j])::"memory");
  }
}

// The empty asm above orders NVVM's code; ptxas does not see it. Its register allocator treats an
// A-fragment register as dead once the wgmma reading it has issued, and may give it to another
// value, which then forces the wait for that wgmma up to before the new value's first write. A
// real use of the fragment (a shared store predicated on `never`, false at run time but not known
// to be) keeps the registers allocated up to where this is placed. Costs one predicated-off
// 16-byte store per 4 registers.
template <int N>
FC_DEVICE void keep_live(const u32 (&r)[N][4], bool never) {
  const u32 flag = never ? 1u : 0u;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    asm volatile(
        "{\n .reg .pred p;\n setp.ne.b32 p, %4, 0;\n @p st.shared.v4.b32 [%5], {%0, %1, %2, %3};\n}\n" ::"r"(r[i][0]),
        "r"(r[i][1]), "r"(r[i][2]), "r"(r[i][3]), "r"(flag), "r"(0u)
        : "memory");
  }
}

// Matrix descriptor (9.7.15.5.1.2) for a tile in the 128-byte swizzle layout: rows of 128 bytes
// (64 16-bit values), 16-byte chunks XORed with (row % 8), 8-row atoms of 1024 bytes. Every tile
// base is 1024-byte aligned, so the base-offset field stays 0.
//   K-major operand: sbo = 1024 (next 8 rows), lbo unused (1).
//   MN-major operand: sbo = 1024 (next 8 rows along K), lbo = bytes to the next 64-wide MN block.
FC_DEVICE u64 make_desc(u32 smem_addr, u32 lbo_bytes, u32 sbo_bytes) {
  u64 d = 0;
  d |= (u64)((smem_addr & 0x3FFFF) >> 4);
  d |= (u64)((lbo_bytes >> 4) & 0x3FFF) << 16;
  d |= (u64)((sbo_bytes >> 4) & 0x3FFF) << 32;
  d |= (u64)1 << 62;  // 128-byte swizzle
  return d;
}

// The descriptor of the operand `bytes` further on: the start-address field is the low 14 bits of
// (address >> 4), and every operand lies below 2^18 bytes of shared memory, so adding bytes >> 4
// (bytes a multiple of 16) never carries out of it. One add per wgmma step instead of building
// each step's descriptor from its address (mask, shift, or).
FC_DEVICE u64 desc_plus(u64 desc, u32 bytes) { return desc + (u64)(bytes >> 4); }
// The same add on the low word alone (it cannot carry into the high one): where the base
// descriptor is per-thread (built from a warpgroup index ptxas cannot prove uniform), a 64-bit add
// took a carry chain and register moves per wgmma; this takes one 32-bit add, the high word stays
// the one constant.
FC_DEVICE u64 desc_plus_lo(u64 desc, u32 bytes) {
  return (desc & 0xFFFFFFFF00000000ull) | (u32)((u32)desc + (bytes >> 4));
}

}  // namespace ptx::warpgroup
