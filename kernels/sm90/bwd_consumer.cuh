// Consumer warpgroups of the Hopper backward (FlashAttention-3's design). Warpgroup w owns keys
// 64w..64w+63 of the CTA's block and keeps their dK and dV in registers. Per step (one query block
// of one query head):
//   Sᵀ = K_w Qᵀ and dPᵀ = V_w dOᵀ          wgmma SS, K/V rows as A: accumulators are per-key rows
//   Pᵀ = exp2(Sᵀ·scale·log2 e − lse2)      lse2 = LSE·log2 e from bwd/prep.cu
//   dSᵀ = Pᵀ ∘ (dPᵀ − D)                   D = rowsum(dO ∘ O) from bwd/prep.cu
//   dV += Pᵀ dO, dK += dSᵀ Q               wgmma RS: Pᵀ, dSᵀ from registers, dO, Q MN-major
//   dQ_i += dS K                           dSᵀ through shared memory, wgmma SS (both MN-major),
//                                          added to the fp32 accumulator with global reductions
//                                          (red.global from registers; with Sm90Bwd::kDqSmem the
//                                          tile goes to shared memory and one thread adds it with a
//                                          bulk reduce: FlashAttention-3's dQ path).
#pragma once
#include "../attn/mask.cuh"
#include "../attn/softcap.cuh"
#include "../common/params.cuh"
#include "../common/ptx/atomic.cuh"
#include "../common/ptx/cvt.cuh"
#include "../common/ptx/ldmatrix.cuh"
#include "../common/ptx/wgmma.cuh"
// probs() and dscores(): elementwise on the mma C layout, which is also one warp's slice of the
// wgmma D layout (rows g and g + 8 of the warp's 16, columns 8j + 2t + {0, 1}).
#include "../sm80/bwd_mainloop.cuh"
#include "bwd_config.cuh"
#include "bwd_smem.cuh"
#include "bwd_zero.cuh"

namespace sm90::bwd::consumer {

constexpr int kM8 = Sm90Bwd::kBlockM / 8;    // query columns of Sᵀ and dPᵀ, in n8 tiles
constexpr int kM16 = Sm90Bwd::kBlockM / 16;  // k16 steps of dV and dK (the reduction runs over queries)
constexpr int kD8 = Sm90Bwd::kHeadDim / 8;
// dQ accumulator n8 tiles: the warpgroup's kDqCols head dims, or with kDqT its dQᵀ's block_m queries.
constexpr int kDq8 = Sm90Bwd::kDqT ? Sm90Bwd::kBlockM / 8 : Sm90Bwd::kDqCols / 8;
constexpr int kThreads = 128 * Sm90Bwd::kConsumers;
// Named barriers among the consumer warpgroups (0 is __syncthreads): every dSᵀ row of the step is
// in shared memory; and the deterministic mode's turn to add dQ.
constexpr int kBarDs = 1;
constexpr int kBarDqTurn = 2;
// kDqSmem: the step's dQ tile is in shared memory (every consumer thread wrote and fenced its part).
constexpr int kBarDqFull = 3;
// FC_SM90_BWD_PROBE (FLASHCORE_SM90_BWD_PROBE; timing probes of the pipelined loop only, the
// gradients are wrong), bits: 1 the reduce issuer does not wait for its dQ buffer's previous
// read, 2 no dQ-full barrier (the reduce goes out without waiting for the other warps' stores),
// 4 no dQ bulk reduce, 8 no per-step dS barrier (implies 2: the warpgroups are then tied only
// by the stage ring), 16 no dQ tile stores, 32 the dQ tile's bytes as 16-byte stores in thread
// order (the same bytes in a quarter (d128, 80 rows) or half of the instructions; wrong layout),
// 64 no dSᵀ stores (the dQ GEMM reads whatever the buffer holds).
// bench/NOTES.md session 31 has what each one measured.
#ifndef FC_SM90_BWD_PROBE
#define FC_SM90_BWD_PROBE 0
#endif
constexpr int kProbe = (FC_SM90_BWD_PROBE & 8) ? (FC_SM90_BWD_PROBE | 2) : FC_SM90_BWD_PROBE;

namespace wg = ptx::warpgroup;

// Sᵀ (64 keys x block_m) = K_w Qᵀ, or dPᵀ = V_w dOᵀ. A: this warpgroup's 64 rows of K (or V); B:
// the step's Q (or dO) tile; both K-major (head dim contiguous), 32 bytes per k16 step within a
// 128-byte row, the next d block every 4 steps. Issues and commits; the caller waits.
// Here and in gemm_rs / gemm_dq, each step's descriptors are the tiles' base descriptors plus the
// step's offset (wg::desc_plus_lo), as in the forward: built from each step's address, every wgmma
// paid a mask, shift, or and a move to the uniform datapath (bench/NOTES.md session 25 item 2).
FC_DEVICE void gemm_kq(float (&acc)[kM8][4], u32 kv, u32 q, int w) {
  const u64 da = wg::make_desc(kv + w * 64 * 128, 16, 1024);
  const u64 db = wg::make_desc(q, 16, 1024);
  wg::fence_operand(acc);
  wg::fence();
#pragma unroll
  for (int kk = 0; kk < Sm90Bwd::kHeadDim / 16; ++kk) {
    wg::wgmma_ss<Sm90Bwd::kBlockM, Sm90Bwd::kBf16>(
        acc, wg::desc_plus_lo(da, (kk / 4) * Sm90Bwd::kBlockN * 128 + (kk % 4) * 32),
        wg::desc_plus_lo(db, (kk / 4) * Sm90Bwd::kBlockM * 128 + (kk % 4) * 32), kk > 0);
  }
  wg::commit();
  wg::fence_operand(acc);
}

// Accumulator layout (64 keys x block_m, fp32) -> wgmma A fragments (16-bit): two adjacent n8 tiles
// of the accumulator are one k16 step of A, as in the forward's P·V.
FC_DEVICE void pack(u32 (&a)[kM16][4], const float (&x)[kM8][4]) {
#pragma unroll
  for (int kk = 0; kk < kM16; ++kk) {
    a[kk][0] = ptx::pack2<Sm90Bwd::kBf16>(x[2 * kk][0], x[2 * kk][1]);
    a[kk][1] = ptx::pack2<Sm90Bwd::kBf16>(x[2 * kk][2], x[2 * kk][3]);
    a[kk][2] = ptx::pack2<Sm90Bwd::kBf16>(x[2 * kk + 1][0], x[2 * kk + 1][1]);
    a[kk][3] = ptx::pack2<Sm90Bwd::kBf16>(x[2 * kk + 1][2], x[2 * kk + 1][3]);
  }
}

// acc (64 keys x head dim) += A (64 keys x block_m: Pᵀ or dSᵀ, registers) · B (block_m x head dim:
// the step's dO or Q tile). B is MN-major here (head dim contiguous, like V in the forward's P·V):
// 8-query groups 1024 bytes apart, d blocks block_m * 128 bytes apart.
FC_DEVICE void gemm_rs(float (&acc)[kD8][4], u32 (&a)[kM16][4], u32 b) {
  const u64 db = wg::make_desc(b, Sm90Bwd::kBlockM * 128, 1024);
  wg::fence_operand(acc);
  wg::fence_operand(a);
  wg::fence();
#pragma unroll
  for (int kk = 0; kk < kM16; ++kk) {
    wg::wgmma_rs<Sm90Bwd::kHeadDim, Sm90Bwd::kBf16, 1>(acc, a[kk], wg::desc_plus_lo(db, kk * 16 * 128));
  }
  wg::commit();
  wg::fence_operand(acc);
  wg::fence_operand(a);
}

// This warpgroup's dQ slice (64 queries x kDqCols) = dS (64 queries x block_n keys) · K (block_n
// keys x kDqCols). A comes from the dSᵀ buffer, B from the K tile, both MN-major: keys are the rows
// (the reduction index), 16 rows = 2048 bytes per k16 step; the next 64-wide query or d block is
// block_n * 128 bytes further. The first step overwrites the accumulator.
// kDqT: the slice transposed, dQᵀ (64 head dims x block_m queries) = Kᵀ (64 dims x block_n keys,
// the K tile's d block read MN-major, as B above) · dSᵀ (block_n keys x block_m queries, the
// query-major dS buffer read K-major: 32 bytes per k16 step in a 128-byte row, the next key block
// every 4 steps).
// (A template so that the branch not taken, whose wgmma shape does not match acc, is discarded.)
template <int N8>
FC_DEVICE void gemm_dq(float (&acc)[N8][4], u32 ds, u32 k) {
  const u64 dk = wg::make_desc(k, Sm90Bwd::kBlockN * 128, 1024);
  const u64 dds = wg::make_desc(ds, Sm90Bwd::kDqT ? 16 : Sm90Bwd::kBlockN * 128, 1024);
  wg::fence_operand(acc);
  wg::fence();
#pragma unroll
  for (int kk = 0; kk < Sm90Bwd::kBlockN / 16; ++kk) {
    if constexpr (Sm90Bwd::kDqT) {
      wg::wgmma_ss<Sm90Bwd::kBlockM, Sm90Bwd::kBf16, 1, 0>(
          acc, wg::desc_plus_lo(dk, kk * 2048), wg::desc_plus_lo(dds, (kk / 4) * Sm90Bwd::kBlockM * 128 + (kk % 4) * 32),
          kk > 0);
    } else {
      wg::wgmma_ss<Sm90Bwd::kDqCols, Sm90Bwd::kBf16, 1, 1>(acc, wg::desc_plus_lo(dds, kk * 2048),
                                                           wg::desc_plus_lo(dk, kk * 2048), kk > 0);
    }
  }
  wg::commit();
  wg::fence_operand(acc);
}

// Writes this warp's 16 keys of dSᵀ (packed as A fragments) into a dS buffer laid out
// [query block of 64][key][64 queries], 128-byte rows with the TMA/wgmma swizzle (16-byte chunk c
// of row r stored at c ^ (r % 8)). Each of stmatrix's 8 x 8 matrices is 8 rows at 8 distinct
// chunks: no bank conflicts. `key` is the warp's first row within the block.
// kDqT: the buffer is query-major instead, [key block of 64][query][64 keys] with the same swizzle
// (the dQᵀ GEMM's K-major B), and one stmatrix.trans per k16 step writes the warp's 16 keys of 16
// queries: matrix i (register i of the A fragment: keys + 8 (i & 1), queries + 8 (i >> 1)) lands
// transposed, one 16-byte row of 8 keys per query; the 8 rows of a matrix sit on 8 distinct chunks.
FC_DEVICE void store_ds(const u32 (&dsa)[kM16][4], u32 buf, int key, int lane) {
  if constexpr (Sm90Bwd::kDqT) {
    const int i = lane >> 3, j = lane & 7;
    const u32 base = buf + (key / 64) * Sm90Bwd::kBlockM * 128;
    const int chunk = (key % 64) / 8 + (i & 1);
#pragma unroll
    for (int kk = 0; kk < kM16; ++kk) {
      const int q = 16 * kk + 8 * (i >> 1) + j;
      ptx::warp::stmatrix_x4_trans(base + ptx::swizzle128(q, chunk), dsa[kk][0], dsa[kk][1], dsa[kk][2], dsa[kk][3]);
    }
    return;
  }
  // One stmatrix per k16 step: register i of the A fragment is the 8 x 8 matrix of keys
  // key + 8 (i & 1) and queries 16 kk + 8 (i >> 1), already in stmatrix's register layout; lane
  // 8i + j addresses its row j, i.e. key row r = key + j + 8 (i & 1) at chunk 2 kk + (i >> 1).
  // Four instructions' worth of 4-byte stores in one (bench/NOTES.md, session 16: the 4-byte
  // stores were ~7% of the d64 step's stall samples, mostly waiting on the shared-memory queue).
  const int i = lane >> 3;
  const int r = key + (lane & 7) + 8 * (i & 1);
#pragma unroll
  for (int kk = 0; kk < kM16; ++kk) {
    const int j = 2 * kk + (i >> 1);  // n8 tile: queries 8j .. 8j + 7
    ptx::warp::stmatrix_x4(buf + (j / 8) * Sm90Bwd::kBlockN * 128 + ptx::swizzle128(r, j % 8), dsa[kk][0], dsa[kk][1],
                           dsa[kk][2], dsa[kk][3]);
  }
}

// Adds the warpgroup's dQ slice to the fp32 accumulator. `rows` points at this warp's first row
// and the slice's first column; rows are head-dim floats apart. Query rows past seqlen_q land in
// the scratch's padding (seqlen_q_pad rows), which bwd/post.cu never reads: no bounds checks.
FC_DEVICE void add_dq(const float (&acc)[kDq8][4], float* rows, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < kDq8; ++j) {
    float* at = rows + g * Sm90Bwd::kHeadDim + 8 * j + 2 * t;
    ptx::red_add_f32x2(at, acc[j][0], acc[j][1]);
    ptx::red_add_f32x2(at + 8 * Sm90Bwd::kHeadDim, acc[j][2], acc[j][3]);
  }
}

// kDqSmem: writes the warpgroup's dQ slice into a dQ tile buffer (block_m rows of head-dim floats,
// 8-float chunks swizzled per row as BwdTraits::dq_chunk, the accumulator's layout, so one bulk
// reduce adds the whole tile). `row` is this warp's first row in the tile, `chunk0` the slice's
// first 8-float chunk. A half-warp's 64-bit stores cover rows g .. g + 3 (one row group of 4) at
// chunk j ^ (row % 4): four distinct 32-byte bank groups, no conflicts.
// kDqT: the slice is dQᵀ (this warp's 16 head dims from 8 * chunk0 + row, x block_m queries), so
// each value is its own 4-byte store: rows 8j + 2t (+ 1), head dim g (+ 8) of the chunk; the
// (row / 2) % 4 swizzle spreads the quad's rows over 4 bank groups (BwdTraits::dq_chunk).
FC_DEVICE void store_dq(const float (&acc)[kDq8][4], u32 buf, int row, int chunk0, int lane) {
  const int g = lane >> 2, t = lane & 3;
  const int c = chunk0 + row / 8;  // kDqT: the chunk of dims g; dims g + 8 are chunk c + 1
  // kDqT, d 96: the second warpgroup's dims past the head dim are the K tile's zero fill (warp-uniform).
  if (Sm90Bwd::kDqT && Sm90Bwd::kHeadDim % 64 != 0 && 8 * c >= Sm90Bwd::kHeadDim) return;
  if constexpr (Sm90Bwd::kDqT) {
    // This lane's rows 8j + 2t (+ 1) all have (row / 2) % 4 = t, so the swizzled chunks are those
    // of row 2t for every j: two column offsets per thread, the rows' offsets immediates.
    const u32 base = buf + (2 * t * Sm90Bwd::kHeadDim + g) * 4;
    const u32 col[2] = {32u * BwdTraits::dq_chunk(c, 2 * t), 32u * BwdTraits::dq_chunk(c + 1, 2 * t)};
#pragma unroll
    for (int j = 0; j < kDq8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const u32 at = base + col[e >> 1] + (8 * j + (e & 1)) * Sm90Bwd::kHeadDim * 4;
        ptx::st_shared_u32(at, __float_as_uint(acc[j][e]));
      }
    }
    return;
  }
  const int r = row + g;
#pragma unroll
  for (int j = 0; j < kDq8; ++j) {
    // Rows r and r + 8 share r % 4, so the same swizzled chunk.
    const u32 at = buf + (r * Sm90Bwd::kHeadDim + 8 * BwdTraits::dq_chunk(chunk0 + j, r) + 2 * t) * 4;
    ptx::st_shared_f32x2(at, acc[j][0], acc[j][1]);
    ptx::st_shared_f32x2(at + 8 * Sm90Bwd::kHeadDim * 4, acc[j][2], acc[j][3]);
  }
}

// Named barriers of the epilogue: every consumer's last GEMM reading K and V has completed (their
// tiles may be overwritten); then one per consumer warpgroup, its dK/dV rows are staged.
constexpr int kBarKvFree = 6;
constexpr int kBarStaged0 = 7;

// dK or dV of this warp's 16 keys (wgmma D layout), times `scale`, into rows `row0` .. of a K/V
// tile in shared memory, in the layout TMA loaded it with ([d block][row][64 values], 128-byte
// swizzle): the box layout of the dk/dv tensor maps.
FC_DEVICE void stage_rows(const float (&acc)[kD8][4], float scale, u32 tile, int row0, int lane) {
  ptx::warp::stmatrix_rows_swizzle128<Sm90Bwd::kBf16>(acc, scale, scale, tile, Sm90Bwd::kBlockN * 128, row0, lane);
}

// dK or dV of this warp's 16 keys, times `scale`, as fp32 rows of head-dim floats (a split's
// partial): each quad writes 32 contiguous bytes per row and n8 tile.
FC_DEVICE void store_partial(const float (&acc)[kD8][4], float scale, float* out, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float* dst = out + (g + 8 * r) * Sm90Bwd::kHeadDim + 2 * t;
#pragma unroll
    for (int i = 0; i < kD8; ++i) {
      *reinterpret_cast<f32x2*>(dst + 8 * i) = f32x2{acc[i][2 * r] * scale, acc[i][2 * r + 1] * scale};
    }
  }
}

// FLASHCORE_SM90_BWD_PINGPONG=1 (Sm90Bwd::kPingPong): the two consumer warpgroups take turns
// issuing their GEMM batches, as the forward's ping-pong (sm90/consumer.cuh turn_begin/turn_end):
// warpgroup w waits on barrier kBarTurn0 + w before a batch and, once issued, arrives on the
// other's, so one warpgroup's exp/dS elementwise work runs while the other's GEMMs hold the
// tensor cores. Turn order (both warpgroups run the same steps, so the same number of turns):
//   plain loop, per step:  A0 A1 B0 B1 | dS barrier | C0 C1      (A = Sᵀ, dPᵀ; B = dV, dK; C = dQ)
//   pipelined loop, per step:  T1_0 T1_1 T2_0 T2_1 T3_0 T3_1 | dS barrier  (T1 = dQ_{i-1}, Sᵀ_i;
//                          T2 = dPᵀ_i; T3 = dV_i, dK_i), then C0 C1 (the last step's dQ) after it.
// Warpgroup 0's first turn waits for nobody and warpgroup 1's last turn hands over to nobody, so
// no arrival is left pending at exit and every bar.sync has its matching bar.arrive.
// Why the turns cannot deadlock with the all-consumer barriers (kBarDs, kBarDqFull, kBarDqTurn):
// every turn_end directly follows its issue, before the warpgroup reaches any other barrier, and
// a turn_begin only waits for the other warpgroup's *previous* turn in the order above. At the dS
// barrier of a step both warpgroups have passed B (T3): warpgroup 1's B waits for warpgroup 0's
// B end, which warpgroup 0 signalled before it arrived at the dS barrier; warpgroup 0 needs
// nothing of warpgroup 1 after its B. After the dS barrier, C0 waits for B1's end (signalled
// before warpgroup 1 arrived at the dS barrier), C1 for C0's end (signalled right after C0's
// issue, before kBarDqFull / kBarDqTurn). The next step's A0 waits for C1's end, signalled before
// warpgroup 1 arrives at kBarDqFull / kBarDqTurn, which warpgroup 0's warp 0 waits on. In the
// pipelined loop only warpgroup 0's warp 0 waits at kBarDqFull, after its T2 end; the others
// arrive after their dQ store, which follows their T1 (warpgroup 1's T1 waits only for
// warpgroup 0's T1 end), so warpgroup 1 reaches kBarDqFull without waiting for warpgroup 0's T2
// or anything after it; warpgroup 1's T2 waits for warpgroup 0's T2 end, signalled before warp 0
// waits. So every wait is for an event its waiter's partner reaches without waiting on the
// waiter: no cycle. Barrier ids: 0 (__syncthreads), 1 to 3 above, 4 and 5 the turns, 6 to 8 the
// epilogue's (below); all < 16.
constexpr int kBarTurn0 = 4;
static_assert(!Sm90Bwd::kPingPong || Sm90Bwd::kConsumers == 2, "the backward's ping-pong alternates two warpgroups");
static_assert(kBarTurn0 + Sm90Bwd::kConsumers <= 16, "named barrier ids run 0 .. 15");

// `first`: this is the CTA's first GEMM batch (warpgroup 0 has no turn to wait for).
FC_DEVICE void turn_begin(int w, bool first) {
  if constexpr (Sm90Bwd::kPingPong) {
    if (!(w == 0 && first)) ptx::named_bar_sync(kBarTurn0 + w, kThreads);
  }
}
// `last`: this is the CTA's last GEMM batch (warpgroup 1 has nobody to hand the turn to).
FC_DEVICE void turn_end(int w, bool last) {
  if constexpr (Sm90Bwd::kPingPong) {
    if (!(w == 1 && last)) ptx::named_bar_arrive(kBarTurn0 + (w ^ 1), kThreads);
  }
}

// kDqSmem, in two halves so the pipelined loop can issue a GEMM between them. dq_store: writes
// warpgroup w's slice of the dQ tile of `step` into its buffer and fences; every warp but the
// issuing one (warp 0 of warpgroup 0) arrives at kBarDqFull. The issuer waited for the buffer's
// previous reduce to read it before the dS barrier that precedes this call.
FC_DEVICE void dq_store(const Sm90BwdSmem& sm, const float (&dq)[kDq8][4], int step, int w, int tw) {
  const int warp = tw >> 5, lane = tw & 31;
  const int dq_row0 = Sm90Bwd::kDqSplitRows ? w * 64 : 0;
  const int dq_col0 = Sm90Bwd::kDqSplitRows ? 0 : w * Sm90Bwd::kDqCols;
  const u32 buf = sm.dq(Sm90Bwd::kDqBufs == 2 ? (step & 1) : 0);
  if constexpr (kProbe & 32) {
#pragma unroll
    for (int j = 0; j < kDq8; ++j) {
      ptx::st_shared_f32x4(buf + (w * 128 + tw) * 16 + j * 4096, dq[j][0], dq[j][1], dq[j][2], dq[j][3]);
    }
  } else if constexpr (!(kProbe & 16)) {
    store_dq(dq, buf, dq_row0 + warp * 16, dq_col0 / 8, lane);
  }
  // The copy engine (async proxy) reads what these generic stores wrote: fence, then meet.
  // Only the issuing warp waits; the others go on.
  ptx::fence_proxy_async_smem();
  if constexpr (!(kProbe & 2)) {
    if (!(w == 0 && warp == 0)) ptx::named_bar_arrive(kBarDqFull, kThreads);
  }
}
// dq_reduce: the issuing warp waits at kBarDqFull for every other warp's stores, and its first
// thread adds the whole tile (query rows m0 .. of accumulator rows `bh`) with one bulk reduce.
FC_DEVICE void dq_reduce(const BwdParams& f, const Sm90BwdSmem& sm, int step, i64 bh, int m0, int w, int tw) {
  if (w == 0 && (tw >> 5) == 0) {
    if constexpr (!(kProbe & 2)) ptx::named_bar_sync(kBarDqFull, kThreads);
    if (!(kProbe & 4) && tw == 0) {
      // Rows m0 .. m0 + block_m - 1 of (b, h) are one contiguous tile of the accumulator.
      const i64 seqlen_q_pad = (i64)f.num_m_blocks * Sm90Bwd::kBlockM;
      float* tile = reinterpret_cast<float*>(f.dq_accum) + (bh * seqlen_q_pad + m0) * Sm90Bwd::kHeadDim;
      ptx::bulk_reduce_add_f32(tile, sm.dq(Sm90Bwd::kDqBufs == 2 ? (step & 1) : 0), Sm90Bwd::kDqBytes);
      ptx::tma_store_commit();
    }
  }
}

// The committed loop: per step Sᵀ, dPᵀ; exp and dS; dV, dK; dQ; each batch waited in the step.
FC_DEVICE void mainloop(const BwdParams& f, const Sm90BwdSmem& sm, const Work& work, int w, int tw,
                        float (&dk)[kD8][4], float (&dv)[kD8][4]) {
  const int warp = tw >> 5, lane = tw & 31;
  const int key0 = work.n0 + w * 64 + warp * 16;  // this warp's first key
  // dQ split (Sm90Bwd::kDqSplitRows): by query halves or by head-dim halves.
  const int dq_row0 = Sm90Bwd::kDqSplitRows ? w * 64 : 0;
  const int dq_col0 = Sm90Bwd::kDqSplitRows ? 0 : w * Sm90Bwd::kDqCols;
  const u32 dq_a = Sm90Bwd::kDqSplitRows ? w * Sm90Bwd::kBlockN * 128 : 0;  // offset in a dS buffer
  const u32 dq_b = sm.k() + (Sm90Bwd::kDqSplitRows ? 0 : w * Sm90Bwd::kBlockN * 128);
  const i64 seqlen_q_pad = (i64)f.num_m_blocks * Sm90Bwd::kBlockM;
  // kDqSmem: the one thread that issues, commits and waits for the dQ bulk reduces.
  const bool issuer = Sm90Bwd::kDqSmem && w == 0 && tw == 0;

  int h = work.h0, mi = 0;
  for (int i = 0; i < work.steps; ++i) {
    const int s = i % Sm90Bwd::kStages;
    const int m0 = work.m0(mi);
    ptx::mbar_wait(sm.q_full(s), (i / Sm90Bwd::kStages) & 1);

    float sc[kM8][4], dp[kM8][4];
    turn_begin(w, i == 0);
    gemm_kq(sc, sm.k(), sm.q(s), w);
    gemm_kq(dp, sm.v(), sm.dout(s), w);
    turn_end(w, false);
    wg::wait<1>();  // groups retire in order: Sᵀ is done, dPᵀ may still run
    wg::fence_operand(sc);
    // Warp-uniform: only the ragged last key block and blocks crossing the diagonal pay for masking.
    // The cap goes on before the mask: tanh(−inf) would be −1, not −inf.
    if constexpr (Sm90Bwd::kSoftcap) attn::apply_softcap(sc, f.softcap_pre);
    if (attn::block_needs_mask_kq<Sm90Bwd::kCausal, Sm90Bwd::kLocal>(key0, m0, Sm90Bwd::kBlockM, f.seqlen_k,
                                                                     f.causal_offset, f.window_offset_left)) {
      attn::apply_mask_kq<Sm90Bwd::kCausal, Sm90Bwd::kLocal>(sc, key0, m0, f.seqlen_k, f.causal_offset,
                                                             f.window_offset_left, lane);
    }
    sm80::bwd::probs(sc, sm.lse2_ptr(s), f.scale_log2, lane);
    wg::wait<0>();
    wg::fence_operand(dp);
    sm80::bwd::dscores<Sm90Bwd::kSoftcap>(dp, sc, sm.dsum_ptr(s), lane, sm.lse2_ptr(s), 1.f / f.scale_log2);

    u32 pa[kM16][4], dsa[kM16][4];
    pack(pa, sc);
    pack(dsa, dp);
    turn_begin(w, false);
    gemm_rs(dv, pa, sm.dout(s));  // dV += Pᵀ dO
    gemm_rs(dk, dsa, sm.q(s));    // dK += dSᵀ Q (the softmax scale is applied once, at the end)
    turn_end(w, false);
    // dSᵀ to shared memory while those run. Buffer i % 2: the other warpgroup read buffer (i - 2)
    // % 2 in step i - 2's dQ GEMM, which it waited for before it arrived at step i - 1's barrier.
    const u32 ds_buf = sm.ds(i & 1);
    store_ds(dsa, ds_buf, w * 64 + warp * 16, lane);
    // wgmma (the async proxy) reads what these generic stores wrote: fence, then meet.
    ptx::fence_proxy_async_smem();
    if constexpr (Sm90Bwd::kDqSmem) {
      // The dQ buffer this step writes was last read by the bulk reduce of step i - kDqBufs; the
      // issuing thread waits for that read before it meets the others here, and they write the
      // buffer only after this barrier.
      if (issuer) ptx::tma_store_wait_read<Sm90Bwd::kDqBufs - 1>();
    }
    ptx::named_bar_sync(kBarDs, kThreads);

    float dq[kDq8][4];
    turn_begin(w, false);
    gemm_dq(dq, ds_buf + dq_a, dq_b);
    turn_end(w, i == work.steps - 1);
    wg::wait<0>();
    wg::fence_operand(dq);
    wg::fence_operand(dv);
    wg::fence_operand(dk);
    wg::fence_operand(pa);
    wg::fence_operand(dsa);
    // Every GEMM reading stage s (Sᵀ, dPᵀ, dV, dK) has completed and lse2/dsum were read.
    ptx::mbar_arrive(sm.q_empty(s));

    const i64 bh = (i64)work.b * f.heads + h;
    if constexpr (Sm90Bwd::kDqSmem) {
      // The same as dq_store + dq_reduce, inline: through the two calls ptxas keeps the wgmma
      // descriptors in per-thread registers (R2UR 55 -> 281, +232 SASS instructions at d128).
      const u32 dq_buf = sm.dq(Sm90Bwd::kDqBufs == 2 ? (i & 1) : 0);
      store_dq(dq, dq_buf, dq_row0 + warp * 16, dq_col0 / 8, lane);
      // The copy engine (async proxy) reads what these generic stores wrote: fence, then meet.
      // Only the issuing warp waits; the others go on to the next step.
      ptx::fence_proxy_async_smem();
      if (w == 0 && warp == 0) {
        ptx::named_bar_sync(kBarDqFull, kThreads);
      } else {
        ptx::named_bar_arrive(kBarDqFull, kThreads);
      }
      if constexpr (Sm90Bwd::kDet) {
        // This key block's turn in the query block (as the red.global path below), awaited by the
        // issuing warp as a whole (ptx::wait_acquire_eq_u32_warp; the issuer's own load is among
        // the acquires that saw it). The warp is named through a shuffle: picked with
        // `w == 0 && warp == 0`, or spun by the issuer alone, the loop is divergent to ptxas,
        // which then computed every wgmma descriptor of the step loop in per-thread registers
        // (-8% at D128 S4K; bench/NOTES.md, session 12, item 10). The counter's address is formed
        // here and again in `sem` below: one lambda for both changed the SASS of six variants,
        // which were not rerun on the device.
        if (__shfl_sync(0xffffffffu, (w == 0 && warp == 0) ? 1 : 0, 0) != 0) {
          ptx::wait_acquire_eq_u32_warp(
              reinterpret_cast<const u32*>(f.dq_sem) + bh * f.num_m_blocks + m0 / Sm90Bwd::kBlockM,
              BwdTraits::dq_turn(work.n_block, m0 / Sm90Bwd::kBlockM, f.window_offset_left));
        }
      }
      if (issuer) {
        // Rows m0 .. m0 + block_m - 1 of (b, h) are one contiguous tile of the accumulator.
        float* tile = reinterpret_cast<float*>(f.dq_accum) + (bh * seqlen_q_pad + m0) * Sm90Bwd::kHeadDim;
        // The query block's turn counter, formed where used (held across the reduce, it and the
        // CTA's key block index spilled a register in the windowed d128 kernel).
        const auto sem = [&] {
          return reinterpret_cast<u32*>(f.dq_sem) + bh * f.num_m_blocks + m0 / Sm90Bwd::kBlockM;
        };
        if constexpr (Sm90Bwd::kDet) {
          // The reduce (async proxy) goes out after the acquire that saw the previous key block's
          // release.
          ptx::fence_proxy_async_global();
        }
        ptx::bulk_reduce_add_f32(tile, dq_buf, Sm90Bwd::kDqBytes);
        ptx::tma_store_commit();
        if constexpr (Sm90Bwd::kDet) {
          // The reduce has completed (its writes performed) before the next key block's turn is
          // published. Only this thread waits; the other warps go on to the next step.
          ptx::tma_store_wait<0>();
          ptx::fence_proxy_async_global();
          ptx::red_release_add_u32(sem(), 1u);
        }
      }
    } else {
      float* rows = reinterpret_cast<float*>(f.dq_accum) + (bh * seqlen_q_pad + m0 + dq_row0 + warp * 16) * Sm90Bwd::kHeadDim +
                    dq_col0;
      u32* sem = reinterpret_cast<u32*>(f.dq_sem) + bh * f.num_m_blocks + m0 / Sm90Bwd::kBlockM;
      if (f.deterministic) {
        // Key blocks first_n_block .. n_block - 1 visit this query block too (BwdTraits::m_begin)
        // and their CTAs were launched earlier (key block fastest): wait for all of them.
        if (tw == 0 && w == 0) {
          ptx::wait_acquire_eq_u32(sem, BwdTraits::dq_turn(work.n_block, m0 / Sm90Bwd::kBlockM, f.window_offset_left));
        }
        ptx::named_bar_sync(kBarDqTurn, kThreads);
      }
      add_dq(dq, rows, lane);
      if (f.deterministic) {
        // Every thread's adds, then one fence and the release in one thread (ptx::release_next_turn)
        // rather than a fence per thread on every warp's path.
        ptx::named_bar_sync(kBarDqTurn, kThreads);
        if (tw == 0 && w == 0) ptx::release_next_turn(sem);
      }
    }
    if (++mi == work.m_count) {
      mi = 0;
      ++h;
    }
  }
}

// This warp's first key, from %tid.x read where it is used (asm volatile: not hoisted). Held across
// the loop, it was the one value the 80-row causal kernel spilled (NVRTC 13.0.88).
FC_DEVICE int warp_key0(const Work& work) {
  u32 tid;
  asm volatile("mov.u32 %0, %%tid.x;\n" : "=r"(tid));
  return work.n0 + ((int)(tid >> 5) - 4) * 16;  // consumer warps are 4 .. 11, 16 keys each
}

// FLASHCORE_SM90_BWD_PIPE=1 (Sm90Bwd::kPipe, shared-memory dQ only): step i's dQ GEMM is issued
// at the top of step i + 1, in one batch with Sᵀ_{i+1}; its tile is stored to shared memory while
// Sᵀ_{i+1} runs, then dPᵀ_{i+1} is issued and the issuing warp meets the others and starts the
// reduce while dPᵀ runs. So the dQ store and its barrier no longer sit between the tensor cores'
// work of consecutive steps, and the peak stays at the committed loop's: dQ (32 registers) is
// dead before dPᵀ's accumulator is live (dQ, Sᵀ and dPᵀ together with dK and dV made ptxas
// serialize the wgmmas for registers, C7512, at both head dims). Every wgmma is issued and waited
// within one iteration (accumulators in flight across the back edge gave C7514: NOTES, Hopper
// backward 2 and 3) and none sits in a conditional (C7518): step 0 issues a dQ GEMM on the other
// dS buffer whose result is thrown away, and the last step's dQ runs after the loop.
FC_DEVICE void mainloop_pipe(const BwdParams& f, const Sm90BwdSmem& sm, const Work& work, int w, int tw,
                             float (&dk)[kD8][4], float (&dv)[kD8][4]) {
  const int warp = tw >> 5, lane = tw & 31;
  const int key0_held = work.n0 + w * 64 + warp * 16;  // this warp's first key
  const u32 dq_a = Sm90Bwd::kDqSplitRows ? w * Sm90Bwd::kBlockN * 128 : 0;  // offset in a dS buffer
  const u32 dq_b = sm.k() + (Sm90Bwd::kDqSplitRows ? 0 : w * Sm90Bwd::kBlockN * 128);
  const bool issuer = w == 0 && tw == 0;

  int h = work.h0, mi = 0;
  int prev_m0 = 0;
  i64 prev_bh = 0;
  for (int i = 0; i < work.steps; ++i) {
    const int s = i % Sm90Bwd::kStages;
    const int m0 = work.m0(mi);
    const i64 bh = (i64)work.b * f.heads + h;
    ptx::mbar_wait(sm.q_full(s), (i / Sm90Bwd::kStages) & 1);

    // dQ_{i-1} reads dS buffer (i - 1) % 2, complete since step i - 1's dS barrier.
    float sc[kM8][4];
    {
      float dq[kDq8][4];
      turn_begin(w, i == 0);
      gemm_dq(dq, sm.ds((i + 1) & 1) + dq_a, dq_b);
      gemm_kq(sc, sm.k(), sm.q(s), w);
      turn_end(w, false);
      wg::wait<1>();  // groups retire in order: dQ_{i-1} is done, Sᵀ may still run
      wg::fence_operand(dq);
      // Uniform over the CTA (kBarDqFull inside). Step 0's dQ GEMM had no step before it.
      if (i > 0) dq_store(sm, dq, i - 1, w, tw);
    }
    float dp[kM8][4];
    turn_begin(w, false);
    gemm_kq(dp, sm.v(), sm.dout(s), w);
    turn_end(w, false);
    if (i > 0) dq_reduce(f, sm, i - 1, prev_bh, prev_m0, w, tw);
    wg::wait<1>();  // Sᵀ is done, dPᵀ may still run
    wg::fence_operand(sc);
    const int key0 = Sm90Bwd::kDqT ? warp_key0(work) : key0_held;
    // The cap goes on before the mask: tanh(−inf) would be −1, not −inf.
    if constexpr (Sm90Bwd::kSoftcap) attn::apply_softcap(sc, f.softcap_pre);
    if (attn::block_needs_mask_kq<Sm90Bwd::kCausal, Sm90Bwd::kLocal>(key0, m0, Sm90Bwd::kBlockM, f.seqlen_k,
                                                                     f.causal_offset, f.window_offset_left)) {
      attn::apply_mask_kq<Sm90Bwd::kCausal, Sm90Bwd::kLocal>(sc, key0, m0, f.seqlen_k, f.causal_offset,
                                                             f.window_offset_left, lane);
    }
    sm80::bwd::probs(sc, sm.lse2_ptr(s), f.scale_log2, lane);
    wg::wait<0>();
    wg::fence_operand(dp);
    sm80::bwd::dscores<Sm90Bwd::kSoftcap>(dp, sc, sm.dsum_ptr(s), lane, sm.lse2_ptr(s), 1.f / f.scale_log2);

    u32 pa[kM16][4], dsa[kM16][4];
    pack(pa, sc);
    pack(dsa, dp);
    turn_begin(w, false);
    gemm_rs(dv, pa, sm.dout(s));  // dV += Pᵀ dO
    gemm_rs(dk, dsa, sm.q(s));    // dK += dSᵀ Q
    turn_end(w, false);
    // Buffer i % 2 was last read by dQ_{i-2}, issued at the top of step i - 1 and waited there by
    // each warpgroup before it arrived at step i - 1's dS barrier.
    if constexpr (!(kProbe & 64)) store_ds(dsa, sm.ds(i & 1), w * 64 + warp * 16, lane);
    ptx::fence_proxy_async_smem();
    // dQ_i's tile goes (next step) into the buffer the reduce of step i - kDqBufs read; the reduce
    // of step i - 1 was committed above, so this waits for all but the newest kDqBufs - 1.
    if (!(kProbe & 1) && issuer) ptx::tma_store_wait_read<Sm90Bwd::kDqBufs - 1>();
    if constexpr (!(kProbe & 8)) ptx::named_bar_sync(kBarDs, kThreads);
    wg::wait<0>();
    wg::fence_operand(dv);
    wg::fence_operand(dk);
    wg::fence_operand(pa);
    wg::fence_operand(dsa);
    // Sᵀ, dPᵀ, dV and dK (every GEMM reading stage s) have completed and lse2/dsum were read.
    ptx::mbar_arrive(sm.q_empty(s));
    prev_m0 = m0;
    prev_bh = bh;
    if (++mi == work.m_count) {
      mi = 0;
      ++h;
    }
  }
  // The last step's dQ (issued even without steps, then dropped: no wgmma under a branch).
  float dq[kDq8][4];
  turn_begin(w, work.steps == 0);
  gemm_dq(dq, sm.ds((work.steps + 1) & 1) + dq_a, dq_b);
  turn_end(w, true);
  wg::wait<0>();
  wg::fence_operand(dq);
  if (work.steps > 0) {
    dq_store(sm, dq, work.steps - 1, w, tw);
    dq_reduce(f, sm, work.steps - 1, prev_bh, prev_m0, w, tw);
  }
}

// The end of a thread's bulk operations (the dQ reduces, the dK/dV stores), after the last dK/dV
// store was issued: shared memory must outlive their reads of it (their global writes complete
// before the kernel does; bwd/post.cu reads them in stream order). Until session 27 the reduces'
// issuer waited for them before the dK/dV epilogue's barrier, so every consumer thread waited too
// (ptxas emits the same DEPBAR for the `.read` form and the full one: what moved is where the
// wait sits; +0.4-2.3% per backward row with the producer's early first load, bench/NOTES.md).
// Where the kernel converts dQ itself (sm90/bwd_convert.cuh), the reduces' issuer (warpgroup 0's
// first thread) then counts the CTA done in its grid row, its writes ordered before the release.
FC_DEVICE void drain(const BwdParams& f, const Sm90BwdSmem& sm, bool dq_issuer) {
  if (Sm90Bwd::kConvert && f.convert_lag > 0 && dq_issuer) {
    ptx::tma_store_wait<0>();
    ptx::fence_proxy_async_global();
    ptx::red_release_add_u32(reinterpret_cast<u32*>(f.dq_sem) + ptx::ld_shared_u32(sm.cta_info(0)), 1u);
  } else {
    ptx::tma_store_wait_read<0>();
  }
}

// Everything consumer warpgroup w (thread tw of it) does, from K/V landing to storing dK and dV.
FC_DEVICE void run(const Sm90BwdParams& p, const Sm90BwdSmem& sm, const Work& work, int w, int tw) {
  const BwdParams& f = p.base;
  const int warp = tw >> 5, lane = tw & 31;
  float dk[kD8][4], dv[kD8][4];
#pragma unroll
  for (int i = 0; i < kD8; ++i) {
    dk[i][0] = dk[i][1] = dk[i][2] = dk[i][3] = 0.f;
    dv[i][0] = dv[i][1] = dv[i][2] = dv[i][3] = 0.f;
  }
  const int key0 = work.n0 + w * 64 + warp * 16;  // this warp's first key
  if constexpr (Sm90Bwd::kDqSmem) {
    // The accumulator rows the bulk reduces add to were zeroed in this kernel (sm90/bwd_zero.cuh):
    // the producer acquired the zeros before its first q_full arrival, which every consumer
    // waits for before its first reduce; the issuing thread's bulk reduces (async proxy) are
    // ordered after the generic stores by a proxy fence.
    if (w == 0 && warp == 0) ptx::fence_proxy_async_global();
  }
  if (work.steps > 0) ptx::mbar_wait(sm.kv_full(), 0);

  if constexpr (Sm90Bwd::kPipe) {
    mainloop_pipe(f, sm, work, w, tw, dk, dv);
  } else {
    mainloop(f, sm, work, w, tw, dk, dv);
  }

  // dK = scale · dSᵀ Q (the scale was left out of dS); keys no query sees get 0.
  if (f.kv_splits > 1) {
    // A share of the group's heads: fp32 partials, summed in split order by bwd/post.cu. Rows run
    // to num_n_blocks * block_n, so the ragged last key block needs no bounds check.
    const i64 seqlen_k_pad = (i64)f.num_n_blocks * Sm90Bwd::kBlockN;
    const i64 part = (i64)f.batch * f.kv_heads * seqlen_k_pad * Sm90Bwd::kHeadDim;  // one split's dK
    float* dkp = reinterpret_cast<float*>(f.dkv_accum) + work.split * part +
                 (((i64)work.b * f.kv_heads + work.hk) * seqlen_k_pad + key0) * Sm90Bwd::kHeadDim;
    store_partial(dk, f.scale, dkp, lane);
    store_partial(dv, 1.f, dkp + (i64)f.kv_splits * part, lane);
    if (w == 0 && tw == 0) drain(f, sm, true);
    return;
  }
  // The whole group's dK and dV: staged in the K and V tiles (free once both warpgroups' last GEMMs
  // reading them, the dQ GEMMs, have completed) and written by TMA, one box of 64 keys per
  // warpgroup and d block. Register stores of 4 bytes were 9% of a D128 S1K backward's stall
  // samples, and the CTA's wait for them to drain at exit another 3% (bench/NOTES.md, session 5).
  // Keys past seqlen_k are clipped by the tensor maps.
  ptx::named_bar_sync(kBarKvFree, kThreads);
  stage_rows(dk, f.scale, sm.k(), w * 64 + warp * 16, lane);
  stage_rows(dv, 1.f, sm.v(), w * 64 + warp * 16, lane);
  // The copy engine (async proxy) reads what these generic stores wrote: fence, then meet.
  ptx::fence_proxy_async_smem();
  ptx::named_bar_sync(kBarStaged0 + w, 128);
  if (tw == 0) {
#pragma unroll
    for (int db = 0; db < Sm90Bwd::kDBlocks; ++db) {
      const u32 off = db * Sm90Bwd::kBlockN * 128 + w * 64 * 128;
      ptx::tma_store_4d(&p.tma_dk, sm.k() + off, db * 64, work.n0 + w * 64, work.hk, work.b);
      ptx::tma_store_4d(&p.tma_dv, sm.v() + off, db * 64, work.n0 + w * 64, work.hk, work.b);
    }
    ptx::tma_store_commit();
    drain(f, sm, w == 0);
  }
}

}  // namespace sm90::bwd::consumer
