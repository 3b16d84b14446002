// Fixed-width integer names. NVRTC compiles without toolkit headers, so <cstdint> is not available;
// we use short names of our own so nothing can collide with a built-in typedef.
#pragma once

typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef int i32;
typedef long long i64;

// 16-byte vector for 128-bit shared/global moves (one ld/st.v4.b32).
struct __align__(16) u32x4 {
  u32 x, y, z, w;
};
// 8-byte pair of 32-bit words (one ld/st.v2.b32).
struct __align__(8) u32x2 {
  u32 x, y;
};
// 8-byte pair of floats (one st.v2.f32).
struct __align__(8) f32x2 {
  float x, y;
};

#define FC_DEVICE __device__ __forceinline__
// The dynamic shared memory a kernel needs, as a symbol in its CUBIN: the compile check
// (scripts/check_smem.py) compares it with the bytes the host launches the kernel with
// (plan/variant.rs Variant::smem_bytes), which the host computes on its own side.
#define FC_EXPORT_SMEM_BYTES(n) extern "C" __device__ const int fc_smem_bytes = (n)

// -inf as a bit pattern: NVRTC has no constexpr infinity without toolkit headers.
#define kNegInf (__int_as_float(0xff800000u))
