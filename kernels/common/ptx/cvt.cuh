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

// Unpacks one register of two 16-bit floats into (lo, hi) fp32, exactly. bf16 is the top half of
// an fp32, so a shift suffices (cvt.f32.bf16 would need sm_90).
template <bool Bf16>
FC_DEVICE void unpack2(u32 x, float& lo, float& hi) {
  if constexpr (Bf16) {
    lo = __uint_as_float(x << 16);
    hi = __uint_as_float(x & 0xffff0000u);
  } else {
    asm("{\n.reg .f16 l, h;\nmov.b32 {l, h}, %2;\ncvt.f32.f16 %0, l;\ncvt.f32.f16 %1, h;\n}\n"
        : "=f"(lo), "=f"(hi)
        : "r"(x));
  }
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
