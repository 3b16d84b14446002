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

// Four floats to four e4m3 bytes (a in the lowest), rounded to nearest, saturating at +-448: the
// register A fragment of an FP8 wgmma holds four consecutive K values per 32-bit register.
FC_DEVICE u32 pack4_e4m3(float a, float b, float c, float d) {
  u32 r;
  asm("{\n.reg .b16 lo, hi;\ncvt.rn.satfinite.e4m3x2.f32 lo, %2, %1;\ncvt.rn.satfinite.e4m3x2.f32 hi, %4, %3;\n"
      "mov.b32 %0, {lo, hi};\n}\n"
      : "=r"(r)
      : "f"(a), "f"(b), "f"(c), "f"(d));
  return r;
}

// ex2.approx (MUFU.EX2): 2 ulp, flushes denormals; exp2(-inf) = +0, which masking relies on.
FC_DEVICE float exp2f_fast(float x) {
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(r) : "f"(x));
  return r;
}

// 2^x for x <= 0 on the FMA and integer pipes instead of MUFU (FlashAttention-4's trick): at
// head dim 64 the MUFU is as busy as the tensor cores, so computing some of the exponentials here
// takes them off the critical pipe. x = j + f with j = round(x) and f in [-1/2, 1/2]; 2^f is a
// relative-error minimax polynomial (degree 3: 7.5e-5, below bf16's half ulp 2e-3; degree 4 for
// fp16: 2.7e-6 against 2.4e-4), and j goes straight into the exponent bits.
// x is clamped at -126: with j = -127 a p(f) below 1 would carry the exponent field under zero into
// the sign bit. So x = -inf (masked) gives ~1e-38 rather than 0; the softmax treats a row whose max
// is -inf as empty, so that never reaches the output. NaN stays NaN (max.NaN, and the final 0*x).
// Measured on the H100 (bench/NOTES.md): slower than MUFU at every head dim in this kernel, whose
// softmax is bound by issue slots rather than by the MUFU pipe; kept as an off-by-default knob.
template <bool Bf16>
FC_DEVICE float exp2f_poly(float x) {
  float xc;
  asm("max.NaN.f32 %0, %1, %2;\n" : "=f"(xc) : "f"(x), "f"(-126.f));
  // Adding 1.5 * 2^23 rounds to an integer held in the low mantissa bits.
  const float shifted = __fadd_rn(xc, 12582912.f);
  const float j = __fadd_rn(shifted, -12582912.f);
  const float f = __fadd_rn(xc, -j);
  float p;
  if constexpr (Bf16) {
    p = fmaf(fmaf(fmaf(0.0551716685f, f, 0.242611140f), f, 0.693260968f), f, 0.999928057f);
  } else {
    p = fmaf(fmaf(fmaf(fmaf(0.00957010221f, f, 0.0559178628f), f, 0.240247443f), f, 0.693121791f), f, 0.999999285f);
  }
  const int ji = __float_as_int(shifted) - __float_as_int(12582912.f);
  const float r = __int_as_float(__float_as_int(p) + (ji << 23));
  return fmaf(xc, 0.f, r);
}

FC_DEVICE float log2f_fast(float x) {
  float r;
  asm("lg2.approx.ftz.f32 %0, %1;\n" : "=f"(r) : "f"(x));
  return r;
}

// tanh.approx.f32 (MUFU.TANH, sm_75+): max relative error about 2^-11, well under a bf16 ulp of
// the capped logit it feeds.
FC_DEVICE float tanhf_fast(float x) {
  float r;
  asm("tanh.approx.f32 %0, %1;\n" : "=f"(r) : "f"(x));
  return r;
}

}  // namespace ptx
