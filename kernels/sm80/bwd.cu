// Backward attention for any sm >= 80, step 2 of 3 (bwd/prep.cu before, bwd/post.cu after):
// FlashAttention-2's schedule on mma.sync. One CTA owns kBlockN keys of one (batch, kv head) and
// keeps K, V, dK and dV there; it walks the query blocks that see any of its keys, for every query
// head of the kv head's group (so GQA's dK/dV sum needs no atomics), with a two-stage cp.async ring
// of Q, dO, LSE and D. Warp w owns keys 16w..16w+15 and computes, per query block i:
//   Sᵀ = K Qᵀ, dPᵀ = V dOᵀ, Pᵀ = exp2(Sᵀ·scale·log2 e − LSE·log2 e), dV += Pᵀ dO,
//   dSᵀ = Pᵀ ∘ (dPᵀ − D), dK += dSᵀ Q   (all in registers), then, through dSᵀ in shared memory,
//   dQ_i += dS K, added to an fp32 accumulator with global reductions.
// Deterministic mode: the CTAs of one (batch, kv head) add into query block i in key-block order,
// each waiting for a per-(batch, head, query block) counter to reach its key block.
#include "../attn/mask.cuh"
#include "../attn/softcap.cuh"
#include "../bwd/config.cuh"
#include "../common/params.cuh"
#include "bwd_mainloop.cuh"
#include "epilogue.cuh"
#include "mainloop.cuh"

using T = BwdTraits;
using QTile = SmemTile<T::kBlockM, T::kHeadDim>;   // Q and dO of one step
using KVTile = SmemTile<T::kBlockN, T::kHeadDim>;  // K and V, loaded once
using DsTile = SmemTile<T::kBlockN, T::kBlockM>;   // dSᵀ of one step, for dQ
constexpr int kVecBytes = T::kBlockM * 4;          // lse2 or dsum of one step (fp32 per query)
// Layout: K | V | stages x (Q | dO | lse2 | dsum) | dSᵀ. Mirrored by plan/backward.rs::bwd_smem_bytes.
constexpr int kStageBytes = 2 * QTile::kBytes + 2 * kVecBytes;
constexpr int kSmemBytes = 2 * KVTile::kBytes + T::kStages * kStageBytes + DsTile::kBytes;
static_assert((2 * kVecBytes) % 128 == 0, "stages stay 128-byte aligned for the swizzle");
static_assert(kSmemBytes <= 227 * 1024, "tile config exceeds the largest shared memory of any sm_80+ part");
FC_EXPORT_SMEM_BYTES(kSmemBytes);
static_assert(T::kWarps % T::kRowGroups == 0, "warps must split evenly over the 16-row groups of a query block");
static_assert(T::kHeadDim % (8 * T::kColSplits) == 0, "each warp's dQ column slice must be whole n8 MMA tiles");

extern "C" __global__ void __launch_bounds__(T::kThreads, T::kMinBlocksPerSm)
    fc_bwd_sm80(const __grid_constant__ BwdParams p) {
  constexpr int kM8 = T::kBlockM / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  const u32 sbase = ptx::smem_addr(smem);
  const u32 sk = sbase, sv = sk + KVTile::kBytes, sring = sv + KVTile::kBytes;
  const u32 sds = sring + T::kStages * kStageBytes;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int n_block = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
  const int n0 = n_block * T::kBlockN;
  const int group = p.heads / p.kv_heads;
  const int seqlen_q_pad = p.num_m_blocks * T::kBlockM;

  // Query blocks wholly before the first query that sees key n0 (causal) or wholly after the last
  // that sees key n0 + kBlockN - 1 (window) contribute nothing.
  const int m_begin = T::m_begin(n0, p.num_m_blocks, p.causal_offset);
  const int m_count = max(0, T::m_end(n0, p.num_m_blocks, p.window_offset_left) - m_begin);
  const int steps = m_count * group;  // (query head, query block) pairs, query block fastest
  // First row of the query block of a step (the deterministic mode walks them downwards).
  auto m0_of = [&](int step) {
    return T::m_at(step % m_count, m_begin, m_count, p.deterministic != 0) * T::kBlockM;
  };

  const u16* k = reinterpret_cast<const u16*>(p.k) + b * p.k_stride_b + hk * p.k_stride_h + n0 * p.k_stride_s;
  const u16* v = reinterpret_cast<const u16*>(p.v) + b * p.v_stride_b + hk * p.v_stride_h + n0 * p.v_stride_s;
  sm80::load_tile<KVTile, T::kThreads>(sk, k, p.k_stride_s, p.seqlen_k - n0, tid);
  sm80::load_tile<KVTile, T::kThreads>(sv, v, p.v_stride_s, p.seqlen_k - n0, tid);

  auto load_step = [&](int step) {
    const int h = hk * group + step / m_count;
    const int m0 = m0_of(step);
    const u32 stage = sring + (step % T::kStages) * kStageBytes;
    const u16* q = reinterpret_cast<const u16*>(p.q) + b * p.q_stride_b + h * p.q_stride_h + m0 * p.q_stride_s;
    const u16* dout =
        reinterpret_cast<const u16*>(p.dout) + b * p.do_stride_b + h * p.do_stride_h + m0 * p.do_stride_s;
    sm80::load_tile<QTile, T::kThreads>(stage, q, p.q_stride_s, p.seqlen_q - m0, tid);
    sm80::load_tile<QTile, T::kThreads>(stage + QTile::kBytes, dout, p.do_stride_s, p.seqlen_q - m0, tid);
    // lse2 and dsum are padded to whole query blocks by bwd/prep.cu: no bounds to check.
    const i64 row0 = ((i64)b * p.heads + h) * seqlen_q_pad + m0;
    constexpr int kVecChunks = kVecBytes / 16;
    if (tid < 2 * kVecChunks) {
      const bool is_lse = tid < kVecChunks;
      const int c = is_lse ? tid : tid - kVecChunks;
      const float* src = reinterpret_cast<const float*>(is_lse ? p.lse2 : p.dsum) + row0 + 4 * c;
      ptx::cp_async_16(stage + 2 * QTile::kBytes + (is_lse ? 0 : kVecBytes) + 16 * c, src, true);
    }
  };

  if (steps > 0) load_step(0);
  ptx::cp_async_commit();  // K, V and step 0 in one group

  float dk[T::kHeadDim / 8][4], dv[T::kHeadDim / 8][4];
#pragma unroll
  for (int j = 0; j < T::kHeadDim / 8; ++j) {
    dk[j][0] = dk[j][1] = dk[j][2] = dk[j][3] = 0.f;
    dv[j][0] = dv[j][1] = dv[j][2] = dv[j][3] = 0.f;
  }

  // ldmatrix addresses, made once: K/V rows of this warp as the A operand of Sᵀ and dPᵀ; Q/dO as
  // the B operand of those (query = n) and, transposed, of dV and dK (query = reduction index).
  const auto kva = sm80::lane_addr_q<KVTile>(warp, lane);
  const auto qb = sm80::lane_addr_k<QTile>(lane);
  const auto qt = sm80::lane_addr_v<QTile>(lane);
  // dQ: warp = (row group, column slice); dSᵀ as the transposed A operand, K as the B operand.
  const int dq_group = warp % T::kRowGroups, dq_slice = warp / T::kRowGroups;
  const u32 ds_lane = sm80::bwd::lane_addr_ds<DsTile>(dq_group, lane);
  const auto kt = LaneAddr<KVTile>::with_chunk_offset((lane & 7) + (((lane >> 3) & 1) << 3), lane >> 4,
                                                      dq_slice * T::kDqCols / 8);
  const int key0 = n0 + warp * 16;

  for (int step = 0; step < steps; ++step) {
    // Prefetch the next step into the other stage. Its last readers (step - 1's GEMMs) finished
    // before step - 1's mid-step barrier. An empty group keeps "all but the newest" = this step.
    if (step + 1 < steps) load_step(step + 1);
    ptx::cp_async_commit();
    ptx::cp_async_wait<1>();
    __syncthreads();

    const int h = hk * group + step / m_count;
    const int m0 = m0_of(step);
    const u32 sq = sring + (step % T::kStages) * kStageBytes;
    const u32 sdo = sq + QTile::kBytes;
    const float* lse2 = reinterpret_cast<const float*>(smem + (sdo + QTile::kBytes - sbase));
    const float* dsum = lse2 + T::kBlockM;

    float s[kM8][4], dp[kM8][4];
    sm80::gemm_qk<KVTile, QTile, T::kBf16>(s, sk, kva, sq, qb);    // Sᵀ = K_w Qᵀ
    sm80::gemm_qk<KVTile, QTile, T::kBf16>(dp, sv, kva, sdo, qb);  // dPᵀ = V_w dOᵀ
    // The cap goes on before the mask: tanh(−inf) would be −1, not −inf.
    if constexpr (T::kSoftcap) attn::apply_softcap(s, p.softcap_pre);
    // Warp-uniform: only the ragged last key block and blocks crossing the diagonal pay for masking.
    if (attn::block_needs_mask_kq<T::kCausal, T::kLocal>(key0, m0, T::kBlockM, p.seqlen_k, p.causal_offset,
                                                         p.window_offset_left)) {
      attn::apply_mask_kq<T::kCausal, T::kLocal>(s, key0, m0, p.seqlen_k, p.causal_offset, p.window_offset_left, lane);
    }
    sm80::bwd::probs(s, lse2, p.scale_log2, lane);
    sm80::gemm_pv<QTile, T::kBf16>(dv, s, sdo, qt);  // dV += Pᵀ dO
    sm80::bwd::dscores<T::kSoftcap>(dp, s, dsum, lane, lse2, 1.f / p.scale_log2);
    sm80::bwd::store_ds<DsTile, T::kBf16>(dp, smem + (sds - sbase), warp, lane);
    sm80::gemm_pv<QTile, T::kBf16>(dk, dp, sq, qt);  // dK += dSᵀ Q
    // dSᵀ complete; also the last read of this stage, so step + 1 may refill it.
    __syncthreads();

    float dq[T::kDqCols / 8][4];
    sm80::bwd::gemm_dq<DsTile, KVTile, T::kDqCols, T::kBf16>(dq, sds, ds_lane, sk, kt);
    const int row0 = m0 + 16 * dq_group;
    const i64 bh = (i64)b * p.heads + h;
    float* acc = reinterpret_cast<float*>(p.dq_accum) + (bh * seqlen_q_pad + row0) * T::kHeadDim +
                 dq_slice * T::kDqCols;
    u32* sem = reinterpret_cast<u32*>(p.dq_sem) + bh * p.num_m_blocks + m0 / T::kBlockM;
    if (p.deterministic) {
      // The key blocks first_n_block .. n_block - 1 all visit this query block too (BwdTraits::m_begin),
      // and their CTAs were launched earlier (lower linear index): wait for all of them.
      if (tid == 0) ptx::wait_acquire_eq_u32(sem, T::dq_turn(n_block, m0 / T::kBlockM, p.window_offset_left));
      __syncthreads();
    }
    sm80::bwd::add_dq<T::kDqCols>(dq, acc, T::kHeadDim, p.seqlen_q - row0, lane);
    if (p.deterministic) {
      // Every thread's adds, then one fence and the release in one thread (ptx::release_next_turn).
      __syncthreads();
      if (tid == 0) ptx::release_next_turn(sem);
    }
  }
  // Every warp has finished reading K and V (the last dQ GEMM); their tiles stage dK and dV.
  ptx::cp_async_wait<0>();
  __syncthreads();

  const float scale[2] = {p.scale, p.scale}, one[2] = {1.f, 1.f};
  const int rows_valid = p.seqlen_k - key0;
  u16* dkp = reinterpret_cast<u16*>(p.dk) + b * p.dk_stride_b + hk * p.dk_stride_h + key0 * p.dk_stride_s;
  u16* dvp = reinterpret_cast<u16*>(p.dv) + b * p.dv_stride_b + hk * p.dv_stride_h + key0 * p.dv_stride_s;
  // dK = scale · dSᵀ Q (the scale was left out of dS); keys no query sees get 0.
  sm80::store_o<KVTile, T::kBf16>(dk, scale, smem, warp, lane, dkp, p.dk_stride_s, rows_valid);
  sm80::store_o<KVTile, T::kBf16>(dv, one, smem + KVTile::kBytes, warp, lane, dvp, p.dv_stride_s, rows_valid);
}
