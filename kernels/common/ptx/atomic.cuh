// Global-memory reductions and the acquire/release pair of the deterministic backward's ordering
// counters (PTX ISA 9.7.13.6 red, 9.7.13.5 atom/ld with .acquire/.release, memory model section 8).
#pragma once
#include "../types.cuh"

namespace ptx {

// *addr += v without a return value (RED.E.ADD.F32 at L2). Relaxed: the order in which
// concurrent adds land is not fixed, so the float result is not bitwise reproducible unless the
// caller orders them (the backward's deterministic mode does).
FC_DEVICE void red_add_f32(float* addr, float v) {
  asm volatile("red.global.add.f32 [%0], %1;\n" ::"l"(addr), "f"(v) : "memory");
}

// Two adjacent floats in one reduction (sm_90+, PTX 8.1: red.global.v2.f32.add); addr 8-byte
// aligned. Below sm_90 two scalar reductions, which give the same per-element result.
FC_DEVICE void red_add_f32x2(float* addr, float a, float b) {
#if __CUDA_ARCH__ >= 900
  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(addr), "f"(a), "f"(b) : "memory");
#else
  red_add_f32(addr, a);
  red_add_f32(addr + 1, b);
#endif
}

// Load with acquire semantics at GPU scope: writes made before a matching release by another CTA
// are visible to this thread after it reads the released value.
FC_DEVICE u32 ld_acquire_u32(const u32* addr) {
  u32 v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(addr) : "memory");
  return v;
}

// Spins until *addr == v, with acquire semantics on the read that sees it.
FC_DEVICE void wait_acquire_eq_u32(const u32* addr, u32 v) {
  while (ld_acquire_u32(addr) != v) {
  }
}

// The same for a whole warp: spins until every lane's acquire load sees *addr == v. Its exit is a
// warp vote, so ptxas sees a warp-uniform loop; a one-thread spin inside a wgmma loop made it
// compute the loop's wgmma descriptors in per-thread registers (bench/NOTES.md, session 12).
FC_DEVICE void wait_acquire_eq_u32_warp(const u32* addr, u32 v) {
  while (!__all_sync(0xffffffffu, ld_acquire_u32(addr) == v)) {
  }
}

// *addr += v with release semantics at GPU scope: everything this thread wrote (and, after a
// bar.sync, what the CTA wrote before it) is visible to a thread that acquires the new value.
FC_DEVICE void red_release_add_u32(u32* addr, u32 v) {
  asm volatile("red.release.gpu.global.add.u32 [%0], %1;\n" ::"l"(addr), "r"(v) : "memory");
}

// fence.acq_rel.gpu: orders this thread's earlier writes, and the writes it has observed (other
// threads' before a barrier it passed: fences are cumulative), before its later ones for every
// observer on the GPU (what __threadfence() emits).
FC_DEVICE void fence_gpu() { asm volatile("fence.acq_rel.gpu;\n" ::: "memory"); }

// Publishes the next turn of a turn counter (the deterministic backward's dQ adds): the caller's
// threads met at a barrier after their global writes, and one thread calls this. Its fence is
// cumulative over the writes it observed through the barrier, so one fence in the publishing
// thread orders every thread's writes before the release.
FC_DEVICE void release_next_turn(u32* addr) {
  fence_gpu();
  red_release_add_u32(addr, 1u);
}

}  // namespace ptx
