// Forward attention for any sm >= 80: FlashAttention-2's schedule on mma.sync.
// One CTA = BlockM query rows of one (batch, head); each warp owns 16 rows and walks all visible
// key blocks with a double-buffered cp.async K/V ring.
// Inference paths (params.cuh has the contract): varlen sequences (blockIdx.z = sequence), cache
// lengths, paged K/V, sliding window (FC_LOCAL), softcap (FC_SOFTCAP) and split-KV (grid.x =
// query blocks * num_splits, split fastest). All but the two compile flags are run-time branches on
// fields a dense call leaves 0, so the dense path does the same work as before.
#include "../attn/mask.cuh"
#include "../attn/softcap.cuh"
#include "../attn/softmax.cuh"
#include "../common/config.cuh"
#include "../common/params.cuh"
#include "epilogue.cuh"
#include "mainloop.cuh"

using QTile = SmemTile<Traits::kBlockM, Traits::kHeadDim>;
using KVTile = SmemTile<Traits::kBlockN, Traits::kHeadDim>;
// Layout: Q | (K, V) x stages. The planner computes the same number (plan/tiles.rs::smem_bytes).
static_assert(Traits::kStages == 2 || Traits::kStages == 3, "sm80 forward: K/V ring depth 2 or 3");
constexpr int kSmemBytes = QTile::kBytes + Traits::kStages * 2 * KVTile::kBytes;
static_assert(kSmemBytes <= 227 * 1024, "tile config exceeds the largest shared memory of any sm_80+ part");
FC_EXPORT_SMEM_BYTES(kSmemBytes);

// Where a CTA works: its sequence's extent (varlen, cache lengths), query block and split, and the
// diagonals moved to that sequence.
struct TileGeom {
  int q_row0, k_row0, seqlen_q, seqlen_k;  // first packed rows (varlen), lengths
  int m0, split;
  int causal_offset, window_left;
  bool exists;  // false: a query block past this sequence's end (varlen grids fit the longest)
};

FC_DEVICE TileGeom tile_geom(const FwdParams& p) {
  const int b = blockIdx.z;
  TileGeom g{0, 0, p.seqlen_q, p.seqlen_k, 0, 0, 0, 0, true};
  if (p.cu_seqlens_q != 0) {
    const int* cu = reinterpret_cast<const int*>(p.cu_seqlens_q);
    g.q_row0 = cu[b];
    g.seqlen_q = cu[b + 1] - g.q_row0;
  }
  if (p.cu_seqlens_k != 0) {
    const int* cu = reinterpret_cast<const int*>(p.cu_seqlens_k);
    g.k_row0 = cu[b];
    g.seqlen_k = cu[b + 1] - g.k_row0;
  }
  if (p.seqused_k != 0) g.seqlen_k = reinterpret_cast<const int*>(p.seqused_k)[b];
  // The int32 arrays are trusted for values, not for safety: a sequence longer than the grid was
  // sized for (seqlen_q, seqlen_k = the longest) is cut there rather than read or written past it.
  g.seqlen_q = min(max(g.seqlen_q, 0), p.seqlen_q);
  g.seqlen_k = min(max(g.seqlen_k, 0), p.seqlen_k);
  int tile = blockIdx.x;
  if (p.num_splits > 1) {
    g.split = tile % p.num_splits;
    tile /= p.num_splits;
  }
  const int num_m_blocks = (g.seqlen_q + Traits::kBlockM - 1) / Traits::kBlockM;
  g.exists = tile < num_m_blocks;
  // Causal: the last query blocks see the most keys; launching them first shortens the tail.
  g.m0 = (Traits::kCausal ? num_m_blocks - 1 - tile : tile) * Traits::kBlockM;
  // The host computes the diagonals for (p.seqlen_q, p.seqlen_k); with per-sequence lengths the
  // bottom-right diagonal moves with this sequence's own Sk - Sq (0 for dense calls).
  const int shift = (g.seqlen_k - g.seqlen_q) - (p.seqlen_k - p.seqlen_q);
  g.causal_offset = p.causal_offset + shift;
  g.window_left = p.window_offset_left + shift;
  return g;
}

extern "C" __global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocksPerSm)
    fc_fwd_sm80(const __grid_constant__ FwdParams p) {
  using T = Traits;
  constexpr int kN8 = T::kBlockN / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  const u32 sq = ptx::smem_addr(smem);
  const u32 skv = sq + QTile::kBytes;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int h = blockIdx.y, b = blockIdx.z;
  const int hk = h / (p.heads / p.kv_heads);
  const TileGeom geom = tile_geom(p);
  // The whole CTA leaves, before any barrier.
  if (!geom.exists) return;
  const int seqlen_q = geom.seqlen_q, seqlen_k = geom.seqlen_k, m0 = geom.m0;

  const i64 q_seq = p.cu_seqlens_q != 0 ? geom.q_row0 * p.q_stride_s : b * p.q_stride_b;
  const u16* q = reinterpret_cast<const u16*>(p.q) + q_seq + h * p.q_stride_h + m0 * p.q_stride_s;
  const bool paged = p.block_table != 0;
  const i64 k_seq = p.cu_seqlens_k != 0 ? geom.k_row0 * p.k_stride_s : b * p.k_stride_b;
  const i64 v_seq = p.cu_seqlens_k != 0 ? geom.k_row0 * p.v_stride_s : b * p.v_stride_b;
  const u16* k = reinterpret_cast<const u16*>(p.k) + k_seq + hk * p.k_stride_h;
  const u16* v = reinterpret_cast<const u16*>(p.v) + v_seq + hk * p.v_stride_h;
  // Paged: the kv head's slice of pool page 0 (load_kv_paged adds page and slot per row).
  const u16* k_pool = reinterpret_cast<const u16*>(p.k) + hk * p.k_stride_h;
  const u16* v_pool = reinterpret_cast<const u16*>(p.v) + hk * p.v_stride_h;
  const int* table = reinterpret_cast<const int*>(p.block_table) + b * p.block_table_stride_b;

  // Key blocks the tile's rows can see: the causal bound of its last row, the window's left edge
  // of its first; blocks outside are never loaded. A split takes its chunk of them.
  int n_end = seqlen_k;
  if (T::kCausal) n_end = min(n_end, min(m0 + T::kBlockM, seqlen_q) + geom.causal_offset);
  int block_begin = 0;
  if (T::kLocal) block_begin = max(0, m0 + geom.window_left) / T::kBlockN;
  int block_end = n_end > 0 ? (n_end + T::kBlockN - 1) / T::kBlockN : 0;
  if (p.num_splits > 1) {
    const int chunk = (max(block_end - block_begin, 0) + p.num_splits - 1) / p.num_splits;
    block_begin += geom.split * chunk;
    block_end = min(block_end, block_begin + chunk);
  }

  auto load_kv = [&](int j) {
    const int n0 = j * T::kBlockN;
    const u32 stage = skv + (j % T::kStages) * 2 * KVTile::kBytes;
    if (paged) {
      sm80::load_kv_paged<KVTile, T::kThreads>(stage, stage + KVTile::kBytes, k_pool, v_pool, p.k_stride_b,
                                               p.k_stride_s, p.v_stride_b, p.v_stride_s, table, p.page_size, n0,
                                               seqlen_k - n0, tid);
      return;
    }
    sm80::load_kv<KVTile, T::kThreads>(stage, stage + KVTile::kBytes, k + n0 * p.k_stride_s, p.k_stride_s,
                                       v + n0 * p.v_stride_s, p.v_stride_s, seqlen_k - n0, tid);
  };

  sm80::load_tile<QTile, T::kThreads>(sq, q, p.q_stride_s, seqlen_q - m0, tid);
  if (block_begin < block_end) load_kv(block_begin);
  ptx::cp_async_commit();

  attn::OnlineSoftmax<kN8> softmax;
  softmax.init();
  float o[T::kHeadDim / 8][4];
#pragma unroll
  for (int j = 0; j < T::kHeadDim / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;

  const auto qa = sm80::lane_addr_q<QTile>(warp, lane);
  const auto ka = sm80::lane_addr_k<KVTile>(lane);
  const auto va = sm80::lane_addr_v<KVTile>(lane);
  // Blocks that need apply_mask for this warp's 16 rows: from mask_from on, block j crosses seqlen_k
  // or the causal diagonal (some key j*BN + c > row + causal_offset); below mask_until, the window's
  // left edge (some key < row + window_left).
  const int warp_row0 = m0 + warp * 16;
  int mask_from = seqlen_k / T::kBlockN;
  if (T::kCausal) mask_from = min(mask_from, max(warp_row0 + geom.causal_offset + 1, 0) / T::kBlockN);
  const int mask_until = T::kLocal ? (max(warp_row0 + geom.window_left + 15, 0) + T::kBlockN - 1) / T::kBlockN : 0;
  for (int j = block_begin; j < block_end; ++j) {
    // Prefetch the next K/V block into the other stage while this one is consumed. An empty group
    // is still committed so that "all but the newest group" always means "block j has landed".
    if (j + 1 < block_end) load_kv(j + 1);
    ptx::cp_async_commit();
    ptx::cp_async_wait<1>();
    __syncthreads();

    const u32 stage = skv + (j % T::kStages) * 2 * KVTile::kBytes;
    float s[kN8][4];
    sm80::gemm_qk<QTile, KVTile, T::kBf16>(s, sq, qa, stage, ka);
    if constexpr (T::kSoftcap) attn::apply_softcap(s, p.softcap_pre);

    // Warp-uniform: only the ragged last block and blocks crossing this warp's diagonals pay for masking.
    if (j >= mask_from || (T::kLocal && j < mask_until)) {
      attn::apply_mask<T::kCausal, T::kLocal>(s, j * T::kBlockN, warp_row0, seqlen_k, geom.causal_offset,
                                              geom.window_left, lane);
    }

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
  {
    const TileGeom& g = geom;
    const int row0 = g.m0 + warp * 16;
    // Row i of this (sequence, head) has LSE index lse_row + i (params.cuh); split partials use the same.
    const i64 lse_row = (p.cu_seqlens_q != 0 ? (i64)g.q_row0 : b * p.lse_stride_b) + h * p.lse_stride_h;
    // Split partials stay sink-free: the combine adds the sink once per row.
    if (p.sinks != 0 && p.num_splits == 1) attn::add_sink(reinterpret_cast<const float*>(p.sinks)[h], inv_l, lse);
    if (p.num_splits > 1) {
      // A split that saw no key writes O = 0 and LSE = -inf, so the combine weighs it 0.
      const i64 row = g.split * p.accum_split_rows + lse_row;
      sm80::store_o_accum<T::kHeadDim>(o, inv_l, reinterpret_cast<float*>(p.o_accum) + (row + row0) * T::kHeadDim,
                                       g.seqlen_q - row0, lane);
      sm80::store_lse(reinterpret_cast<float*>(p.lse_accum) + row, lse, row0, g.seqlen_q, lane);
      return;
    }
    const i64 o_seq = p.cu_seqlens_q != 0 ? g.q_row0 * p.o_stride_s : b * p.o_stride_b;
    u16* out = reinterpret_cast<u16*>(p.o) + o_seq + h * p.o_stride_h + row0 * p.o_stride_s;
    sm80::store_o<QTile, T::kBf16>(o, inv_l, smem, warp, lane, out, p.o_stride_s, g.seqlen_q - row0);
    if (p.lse != 0) sm80::store_lse(reinterpret_cast<float*>(p.lse) + lse_row, lse, row0, g.seqlen_q, lane);
  }
}
