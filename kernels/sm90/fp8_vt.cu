// FP8 forward, before sm90/fwd.cu: V (e4m3 [B, Sk, Hkv, D]) transposed to [B, Hkv, D, Sk_pad].
// FP8 wgmma reads both operands K-major, and P·V reduces over keys, so its B operand needs the keys
// contiguous. Keys go in a permuted order within each group of 32: position c holds key pi(c), the
// order in which a lane's own probabilities fill its A-fragment registers (sm90/consumer.cuh
// pack_p), so the main kernel needs no shuffle between the two GEMMs. Keys past seqlen_k are 0
// (their P is 0, and 0 x garbage could be NaN). Memory-bound: V is read once and written once.
#include "../common/params.cuh"

constexpr int kVtKeys = 64;  // keys per CTA
constexpr int kVtThreads = 256;

// A-fragment column c = 16h + 4t + 2i1 + i0 of a k32 step holds the lane's (t's) accumulator
// column 8(2h + i1) + 2t + i0.
FC_DEVICE int vt_key_of(int c) { return (c & 16) | ((c & 2) << 2) | (((c >> 2) & 3) << 1) | (c & 1); }

extern "C" __global__ void __launch_bounds__(kVtThreads) fc_fp8_vt(const __grid_constant__ VtParams p) {
  __shared__ __align__(16) unsigned char tile[kVtKeys * 256];
  const int key0 = blockIdx.x * kVtKeys, hk = blockIdx.y, b = blockIdx.z;
  const int d = p.head_dim, chunks = d / 16;
  const unsigned char* v = reinterpret_cast<const unsigned char*>(p.v) + b * p.v_stride_b + hk * p.v_stride_h;
  for (int i = threadIdx.x; i < kVtKeys * chunks; i += kVtThreads) {
    const int row = i / chunks, c = i % chunks, key = key0 + row;
    u32x4 x = {0u, 0u, 0u, 0u};
    if (key < p.seqlen_k) x = *reinterpret_cast<const u32x4*>(v + key * p.v_stride_s + c * 16);
    *reinterpret_cast<u32x4*>(tile + row * d + c * 16) = x;
  }
  __syncthreads();
  unsigned char* vt = reinterpret_cast<unsigned char*>(p.vt) + ((i64)b * p.kv_heads + hk) * d * p.seqlen_pad;
  for (int i = threadIdx.x; i < d * (kVtKeys / 16); i += kVtThreads) {
    const int dd = i / (kVtKeys / 16), c = i % (kVtKeys / 16);
    const int pos0 = key0 + c * 16;
    if (pos0 >= p.seqlen_pad) continue;
    u32 w[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      u32 word = 0;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int pos = c * 16 + 4 * j + e;  // within this CTA's keys; groups of 32 stay aligned
        const int src = (pos & ~31) | vt_key_of(pos & 31);
        word |= (u32)tile[src * d + dd] << (8 * e);
      }
      w[j] = word;
    }
    *reinterpret_cast<u32x4*>(vt + (i64)dd * p.seqlen_pad + pos0) = u32x4{w[0], w[1], w[2], w[3]};
  }
}
