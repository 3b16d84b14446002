// Microbenchmark: does wgmma with both operands in shared memory (SS) run slower than with A from
// registers (RS) at the forward kernel's shapes? Each consumer warpgroup issues K-steps of
// m64nNk16 (bf16) or m64nNk32 (e4m3) into two accumulators, two groups in flight.
// Defines: MB_N (64/128/256), MB_RS (0/1), MB_WG (warpgroups), MB_FP8 (0/1).
#include "../../../kernels/common/ptx/wgmma.cuh"
using namespace ptx::warpgroup;

#ifndef MB_N
#define MB_N 128
#endif
constexpr int kN8 = MB_N / 8;
// K = 128 per group: 8 k16 steps over two 64-wide blocks (bf16), 4 k32 steps over one 128-byte block (e4m3).
constexpr int kSteps = MB_FP8 ? 4 : 8;

template <int N>
FC_DEVICE void ss(float (&d)[N / 8][4], u64 a, u64 b);
template <int N>
FC_DEVICE void rs(float (&d)[N / 8][4], const u32 (&a)[4], u64 b);
#if MB_FP8
template <> FC_DEVICE void ss<64>(float (&d)[8][4], u64 a, u64 b) { wgmma_ss_m64n64k32_e4m3(d, a, b, 1); }
template <> FC_DEVICE void ss<128>(float (&d)[16][4], u64 a, u64 b) { wgmma_ss_m64n128k32_e4m3(d, a, b, 1); }
template <> FC_DEVICE void rs<64>(float (&d)[8][4], const u32 (&a)[4], u64 b) { wgmma_rs_m64n64k32_e4m3(d, a, b); }
template <> FC_DEVICE void rs<128>(float (&d)[16][4], const u32 (&a)[4], u64 b) { wgmma_rs_m64n128k32_e4m3(d, a, b); }
#else
template <> FC_DEVICE void ss<64>(float (&d)[8][4], u64 a, u64 b) { wgmma_ss_m64n64k16_bf16(d, a, b, 1); }
template <> FC_DEVICE void ss<128>(float (&d)[16][4], u64 a, u64 b) { wgmma_ss_m64n128k16_bf16(d, a, b, 1); }
template <> FC_DEVICE void rs<64>(float (&d)[8][4], const u32 (&a)[4], u64 b) { wgmma_rs_m64n64k16_bf16<0>(d, a, b); }
template <> FC_DEVICE void rs<128>(float (&d)[16][4], const u32 (&a)[4], u64 b) { wgmma_rs_m64n128k16_bf16<0>(d, a, b); }
#endif

FC_DEVICE u32 smem_u32(const void* p) { return (u32)__cvta_generic_to_shared(p); }

extern "C" __global__ void __launch_bounds__(128 * MB_WG, 1) mb(const u32* src, float* out, int iters) {
  extern __shared__ __align__(1024) unsigned char raw[];
  const u32 base = (smem_u32(raw) + 1023u) & ~1023u;
  unsigned char* gbase = raw + (base - smem_u32(raw));
  // A: per warpgroup 64 rows x 128 bytes x 2 blocks (16 KiB); B: N rows x 128 bytes x 2 blocks.
  const int a_bytes = MB_WG * 16384, b_bytes = MB_N * 256;
  for (int i = threadIdx.x; i < (a_bytes + b_bytes) / 4; i += blockDim.x)
    reinterpret_cast<u32*>(gbase)[i] = src[i] & 0x3f3f3f3fu;  // finite values in bf16 and e4m3
  __syncthreads();
  const int wg = threadIdx.x / 128;
  const u32 a0 = base + wg * 16384, b0 = base + a_bytes;
  u32 ar[2][4];  // two A fragments reused across steps: values do not matter here, registers do
#pragma unroll
  for (int k = 0; k < 2; ++k)
#pragma unroll
    for (int j = 0; j < 4; ++j) ar[k][j] = src[(threadIdx.x * 37 + k * 4 + j) & 4095] & 0x3f3f3f3fu;
  float acc0[kN8][4], acc1[kN8][4];
#pragma unroll
  for (int i = 0; i < kN8; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc0[i][j] = acc1[i][j] = 0.f;
  for (int it = 0; it < iters; ++it) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float(&acc)[kN8][4] = half ? acc1 : acc0;
      fence_operand(acc);
      fence();
#pragma unroll
      for (int k = 0; k < kSteps; ++k) {
        const u32 off = (k / 4) * 8192 + (k % 4) * 32;
        const u64 db = make_desc(b0 + (k / 4) * (MB_N * 128) + (k % 4) * 32, 16, 1024);
        if (MB_RS) rs<MB_N>(acc, ar[k & 1], db);
        else ss<MB_N>(acc, make_desc(a0 + off, 16, 1024), db);
      }
      commit();
      wait<1>();
      fence_operand(acc);
    }
  }
  wait<0>();
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < kN8; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) s += acc0[i][j] + acc1[i][j];
  out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}
