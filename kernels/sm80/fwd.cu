// Forward attention for any sm >= 80: FlashAttention-2's schedule on mma.sync.
// One CTA = BlockM query rows of one (batch, head); each warp owns 16 rows and walks all visible
// key blocks with a double-buffered cp.async K/V ring.
#include "../attn/mask.cuh"
#include "../attn/softmax.cuh"
#include "../common/config.cuh"
#include "../common/params.cuh"
#include "epilogue.cuh"
#include "mainloop.cuh"

using QTile = SmemTile<Traits::kBlockM, Traits::kHeadDim>;
using KVTile = SmemTile<Traits::kBlockN, Traits::kHeadDim>;
// Layout: Q | (K, V) x stages. The planner computes the same number (plan/tiles.rs::smem_bytes).
constexpr int kSmemBytes = QTile::kBytes + Traits::kStages * 2 * KVTile::kBytes;
static_assert(kSmemBytes <= 227 * 1024, "tile config exceeds the largest shared memory of any sm_80+ part");

extern "C" __global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocksPerSm)
    fc_fwd_sm80(const __grid_constant__ FwdParams p) {
  using T = Traits;
  constexpr int kN8 = T::kBlockN / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  const u32 sq = ptx::smem_addr(smem);
  const u32 skv = sq + QTile::kBytes;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  // Causal: the last query blocks see the most keys; launching them first shortens the tail.
  const int m_block = T::kCausal ? p.num_m_blocks - 1 - (int)blockIdx.x : (int)blockIdx.x;
  const int h = blockIdx.y, b = blockIdx.z;
  const int hk = h / (p.heads / p.kv_heads);
  const int m0 = m_block * T::kBlockM;

  const u16* q = reinterpret_cast<const u16*>(p.q) + b * p.q_stride_b + h * p.q_stride_h + m0 * p.q_stride_s;
  const u16* k = reinterpret_cast<const u16*>(p.k) + b * p.k_stride_b + hk * p.k_stride_h;
  const u16* v = reinterpret_cast<const u16*>(p.v) + b * p.v_stride_b + hk * p.v_stride_h;

  int n_end = p.seqlen_k;
  if (T::kCausal) n_end = min(n_end, m0 + T::kBlockM + p.causal_offset);
  const int n_blocks = n_end > 0 ? (n_end + T::kBlockN - 1) / T::kBlockN : 0;

  auto load_kv = [&](int j) {
    const int n0 = j * T::kBlockN;
    const u32 stage = skv + (j % T::kStages) * 2 * KVTile::kBytes;
    sm80::load_tile<KVTile, T::kThreads>(stage, k + n0 * p.k_stride_s, p.k_stride_s, p.seqlen_k - n0, tid);
    sm80::load_tile<KVTile, T::kThreads>(stage + KVTile::kBytes, v + n0 * p.v_stride_s, p.v_stride_s,
                                         p.seqlen_k - n0, tid);
  };

  sm80::load_tile<QTile, T::kThreads>(sq, q, p.q_stride_s, p.seqlen_q - m0, tid);
  if (n_blocks > 0) load_kv(0);
  ptx::cp_async_commit();

  attn::OnlineSoftmax<kN8> softmax;
  softmax.init();
  float o[T::kHeadDim / 8][4];
#pragma unroll
  for (int j = 0; j < T::kHeadDim / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;

  const auto qa = sm80::lane_addr_q<QTile>(warp, lane);
  const auto ka = sm80::lane_addr_k<KVTile>(lane);
  const auto va = sm80::lane_addr_v<KVTile>(lane);
  const int warp_row0 = m0 + warp * 16;
  for (int j = 0; j < n_blocks; ++j) {
    // Prefetch the next K/V block into the other stage while this one is consumed. An empty group
    // is still committed so that "all but the newest group" always means "block j has landed".
    if (j + 1 < n_blocks) load_kv(j + 1);
    ptx::cp_async_commit();
    ptx::cp_async_wait<1>();
    __syncthreads();

    const u32 stage = skv + (j % T::kStages) * 2 * KVTile::kBytes;
    float s[kN8][4];
    sm80::gemm_qk<QTile, KVTile, T::kBf16>(s, sq, qa, stage, ka);

    const int n0 = j * T::kBlockN;
    // Warp-uniform: only the ragged last block and blocks crossing this warp's diagonal pay for masking.
    const bool need_mask =
        n0 + T::kBlockN > p.seqlen_k || (T::kCausal && n0 + T::kBlockN - 1 > warp_row0 + p.causal_offset);
    if (need_mask) attn::apply_mask<T::kCausal>(s, n0, warp_row0, p.seqlen_k, p.causal_offset, lane);

    float alpha[2];
    softmax.update(s, p.scale_log2, alpha);
#pragma unroll
    for (int d = 0; d < T::kHeadDim / 8; ++d) {
      o[d][0] *= alpha[0];
      o[d][1] *= alpha[0];
      o[d][2] *= alpha[1];
      o[d][3] *= alpha[1];
    }
    sm80::gemm_pv<KVTile, T::kBf16>(o, s, stage + KVTile::kBytes, va);
    // With two stages, every warp must be done with this one before iteration j+1 refills it with
    // block j+2. With three, the refill targets the stage read in iteration j-1, which the barrier
    // after iteration j+1's wait already orders.
    if constexpr (T::kStages == 2) __syncthreads();
  }
  // The Q tile (written by every thread's cp.async) is reused for O below.
  ptx::cp_async_wait<0>();
  __syncthreads();

  float inv_l[2], lse[2];
  softmax.finish(p.scale_log2, inv_l, lse);
  u16* out = reinterpret_cast<u16*>(p.o) + b * p.o_stride_b + h * p.o_stride_h + warp_row0 * p.o_stride_s;
  sm80::store_o<QTile, T::kBf16>(o, inv_l, smem, warp, lane, out, p.o_stride_s, p.seqlen_q - warp_row0);
  if (p.lse != 0) {
    float* lse_bh = reinterpret_cast<float*>(p.lse) + b * p.lse_stride_b + h * p.lse_stride_h;
    sm80::store_lse(lse_bh, lse, warp_row0, p.seqlen_q, lane);
  }
}
