// cp.async (PTX ISA 9.7.9.25, sm_80+): asynchronous 16-byte global -> shared copies.
#pragma once
#include "../types.cuh"

namespace ptx {

FC_DEVICE u32 smem_addr(const void* p) { return (u32)__cvta_generic_to_shared(p); }

// Copies 16 bytes, or writes 16 zero bytes when !valid (src-size 0 reads nothing, so an
// out-of-range row never touches global memory; the caller still passes a mapped address).
// .cg bypasses L1: K/V tiles are read once per CTA, caching them in L1 only evicts useful lines.
FC_DEVICE void cp_async_16(u32 smem, const void* gmem, bool valid) {
  const int src_size = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem), "r"(src_size)
               : "memory");
}

FC_DEVICE void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most N committed groups are still in flight.
template <int N>
FC_DEVICE void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

}  // namespace ptx
