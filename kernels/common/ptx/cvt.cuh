// Conversions (PTX ISA 9.7.9.21 cvt, sm_80+ for bf16x2) and the fast math the softmax needs.
#pragma once
#include "../types.cuh"

namespace ptx {

// Packs (lo, hi) into one 32-bit register of two 16-bit floats, round-to-nearest-even.
// cvt's first source lands in the upper half, hence (hi, lo).
template <bool Bf16>
FC_DEVICE u32 pack2(float lo, float hi) {
  u32 r;
  if constexpr (Bf16) {
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  } else {
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  }
  return r;
}

// ex2.approx (MUFU.EX2): 2 ulp, flushes denormals; exp2(-inf) = +0, which masking relies on.
FC_DEVICE float exp2f_fast(float x) {
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(r) : "f"(x));
  return r;
}

FC_DEVICE float log2f_fast(float x) {
  float r;
  asm("lg2.approx.ftz.f32 %0, %1;\n" : "=f"(r) : "f"(x));
  return r;
}

}  // namespace ptx
