// Consumer warpgroups: S = Q·Kᵀ with both operands in shared memory, online softmax in registers,
// O += P·V with P straight from registers (the S accumulator layout is the wgmma A-fragment layout).
#pragma once
#include "../attn/mask.cuh"
#include "../attn/softcap.cuh"
#include "../attn/softmax.cuh"
#include "../common/params.cuh"
#include "../common/ptx/cvt.cuh"
#include "../common/ptx/ldmatrix.cuh"
#include "../common/ptx/wgmma.cuh"
#include "scheduler.cuh"
#include "smem.cuh"

namespace sm90::consumer {

constexpr int kN8 = Sm90::kBlockN / 8;
constexpr int kD8 = Sm90::kHeadDim / 8;
// K of one wgmma: 16 values (32 bytes) in 16 bits, 32 in e4m3: either way a step is 32 bytes of a
// 128-byte swizzled row.
constexpr int kStepK = Sm90::kFp8 ? 32 : 16;
constexpr int kK16 = Sm90::kBlockN / kStepK;  // P·V steps
// Named barriers 1 .. kConsumers: consumer warpgroup w's turn to issue GEMMs is barrier 1 + w,
// completed by the arrival of warpgroup w - 1 (cyclically) after its own issue.
constexpr int kBarTurn0 = 1;
// Mainloop::run_overlapped: keep P's registers allocated until the softmax is done (see there).
// Measured on the H100 (bench/NOTES.md, session 8): d256 +1-2% (+3.5% with ping-pong off, its
// default now), causal d64 / d128 +1-3%, non-causal d64 / d96 / d128 level to -1% (the
// predicated-off stores are instructions too, and those rows' softmax was mostly hidden by the
// other warpgroup already); FP8 d64 causal +3%, FP8 d128's two-consumer causal tile -3%. Once
// the rescale slack (attn::OnlineSoftmax) had taken the O multiplies out of most blocks, d128
// non-causal gained too: S2K-S8K +2% (session 10). So on for 16-bit d128 / d256 and masked
// rows, and FP8 d64 causal. FC_SM90_KEEP_P=0|1 forces it.
#ifdef FC_SM90_KEEP_P
constexpr bool kKeepP = FC_SM90_KEEP_P != 0;
#else
constexpr bool kKeepP = Sm90::kFp8 ? (Sm90::kHeadDim == 64 && Traits::kCausal)
                                   : (Sm90::kHeadDim >= 128 || Traits::kCausal || Traits::kLocal);
#endif

// The online softmax; with Sm90::kSumMma its row sums come from P·V's extra columns instead.
using Softmax = attn::OnlineSoftmax<kN8, Sm90::kSumMma>;

// fence_operand for P·V's accumulators: O, and with Sm90::kSumMma the row sums beside it.
FC_DEVICE void fence_pv_acc(float (&o)[kD8][4], float (&lsum)[4]) {
  ptx::warpgroup::fence_operand(o);
  if constexpr (Sm90::kSumMma) ptx::warpgroup::fence_operand(lsum);
}

// S (this warpgroup's 64 rows x block_n) = Q · Kᵀ over head-dim steps of 16. Issues and commits;
// the caller waits.
FC_DEVICE void gemm_qk(float (&s)[kN8][4], const Sm90Smem& sm, u32 q, int wg, int stage) {
  ptx::warpgroup::fence_operand(s);
  ptx::warpgroup::fence();
  // Each step's descriptors as the tile's base descriptors plus the step's offset (desc_plus).
  const u64 dq = ptx::warpgroup::make_desc(q + wg * 64 * 128, 16, 1024);
  const u64 dk = ptx::warpgroup::make_desc(sm.k(stage), 16, 1024);
#pragma unroll
  for (int kk = 0; kk < Sm90::kHeadDim / kStepK; ++kk) {
    // Within a 128-byte row a step is 32 bytes; every 4 steps move to the next d block.
    const u64 da = ptx::warpgroup::desc_plus(dq, (kk / 4) * Sm90::kBlockM * 128 + (kk % 4) * 32);
    const u64 db = ptx::warpgroup::desc_plus(dk, (kk / 4) * Sm90::kBlockN * 128 + (kk % 4) * 32);
    if constexpr (Sm90::kFp8) {
      ptx::warpgroup::wgmma_ss_e4m3<Sm90::kBlockN>(s, da, db, kk > 0);
    } else {
      ptx::warpgroup::wgmma_ss<Sm90::kBlockN, Traits::kBf16>(s, da, db, kk > 0);
    }
  }
  ptx::warpgroup::commit();
  ptx::warpgroup::fence_operand(s);
}

#if defined(FC_SM90_PROBE) && (FC_SM90_PROBE & 8)
// Timing probe: Q·Kᵀ with A from registers (whatever `a` holds), accumulating onto s. Only where
// P's fragments have Q's shape (16-bit, head dim = block_n); elsewhere the usual Q·Kᵀ.
template <int K>
FC_DEVICE void gemm_qk_rs(float (&s)[kN8][4], u32 (&a)[K][4], const Sm90Smem& sm, u32 q, int wg, int stage) {
  if constexpr (K == Sm90::kHeadDim / 16 && !Sm90::kFp8) {
    ptx::warpgroup::fence_operand(s);
    ptx::warpgroup::fence_operand(a);
    ptx::warpgroup::fence();
#pragma unroll
    for (int kk = 0; kk < K; ++kk) {
      const u32 ka = sm.k(stage) + (kk / 4) * Sm90::kBlockN * 128 + (kk % 4) * 32;
      ptx::warpgroup::wgmma_rs<Sm90::kBlockN, Traits::kBf16, 0>(s, a[kk], ptx::warpgroup::make_desc(ka, 16, 1024));
    }
    ptx::warpgroup::commit();
    ptx::warpgroup::fence_operand(s);
    ptx::warpgroup::fence_operand(a);
  } else {
    gemm_qk(s, sm, q, wg, stage);
  }
}
#endif

// Converts probabilities (S accumulator layout) into wgmma A fragments: two adjacent n8 tiles of
// the accumulator are one k16 step of A.
// FP8: a k32 A fragment wants keys 4t..4t+3 (and 16 + 4t..) of its row in one register, the
// accumulator gives the lane keys 8j + 2t, 8j + 2t + 1 of n8 tiles j. Rather than move bytes
// between lanes, the register takes the lane's own keys {2t, 2t+1, 8+2t, 8+2t+1} (and 16 more for
// the second half), and fp8_vt.cu stores V's keys in that same order within each group of 32 keys:
// the product sums the same pairs, and no shuffle or byte permute is needed here.
FC_DEVICE void pack_p(u32 (&pa)[kK16][4], const float (&p)[kN8][4]) {
  if constexpr (Sm90::kFp8) {
#pragma unroll
    for (int kk = 0; kk < kK16; ++kk) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float(&a)[4] = p[4 * kk + 2 * h];
        const float(&b)[4] = p[4 * kk + 2 * h + 1];
        pa[kk][2 * h] = ptx::pack4_e4m3(a[0], a[1], b[0], b[1]);      // row g
        pa[kk][2 * h + 1] = ptx::pack4_e4m3(a[2], a[3], b[2], b[3]);  // row g + 8
      }
    }
  } else {
#pragma unroll
    for (int kk = 0; kk < kK16; ++kk) {
      pa[kk][0] = ptx::pack2<Traits::kBf16>(p[2 * kk][0], p[2 * kk][1]);
      pa[kk][1] = ptx::pack2<Traits::kBf16>(p[2 * kk][2], p[2 * kk][3]);
      pa[kk][2] = ptx::pack2<Traits::kBf16>(p[2 * kk + 1][0], p[2 * kk + 1][1]);
      pa[kk][3] = ptx::pack2<Traits::kBf16>(p[2 * kk + 1][2], p[2 * kk + 1][3]);
    }
  }
}

// Sm90::kPSmem: named barrier 7 + w lets consumer warpgroup w's wgmma read the P tile that all of
// its threads have just written (the epilogue's are 4 .. 6, the ping-pong turns 1 .. 3).
constexpr int kBarP0 = 7;

// Sm90::kPSmem: writes P's fragments (pack_p's layout) to this warpgroup's P tile as the K-major
// A operand of P·V, with the 128-byte swizzle TMA gives Q (16-byte chunk c of row r at c ^ (r % 8)):
// stmatrix's 8 x 8 matrices of 16-bit pairs are 4 keys x 8 rows here, and register i of step kk
// is rows g (+ 8 for odd i) at keys 32 kk + 16 (i / 2) + 4 t, where pack_p put them. Then the
// writes are fenced for the async proxy and the warpgroup meets, so its next wgmma sees them all.
FC_DEVICE void store_p(const u32 (&pa)[kK16][4], u32 p_wg, int wg, int warp, int lane) {
  const int i = lane >> 3, row = warp * 16 + (i & 1) * 8 + (lane & 7);
  const u32 at = p_wg + row * 128;
#pragma unroll
  for (int kk = 0; kk < kK16; ++kk) {
    // 128 keys per 128-byte row; a 256-key block is two such [64 rows][128 B] tiles.
    const int chunk = 2 * (kk % 4) + (i >> 1);
    const u32 tile = Sm90::kBlockN == 128 ? at : at + (kk / 4) * 64 * 128;
    ptx::warp::stmatrix_x4(tile + ((chunk ^ (lane & 7)) << 4), pa[kk][0], pa[kk][1], pa[kk][2], pa[kk][3]);
  }
  ptx::fence_proxy_async_smem();
  ptx::named_bar_sync(kBarP0 + wg, 128);
}

// Sm90::kPSmem: O += P · V with P from this warpgroup's P tile (written by store_p).
FC_DEVICE void gemm_pv_smem(float (&o)[kD8][4], u32 p_wg, const Sm90Smem& sm, int stage) {
  if constexpr (Sm90::kPSmem) {
    ptx::warpgroup::fence_operand(o);
    ptx::warpgroup::fence();
    const u64 dp = ptx::warpgroup::make_desc(p_wg, 16, 1024);
    const u64 dv = ptx::warpgroup::make_desc(sm.v(stage), 16, 1024);
#pragma unroll
    for (int kk = 0; kk < kK16; ++kk) {
      // As gemm_pv's FP8 steps; P's k32 step is 32 bytes of its row, every 4 steps the next
      // 128-key tile.
      const u32 p_off = Sm90::kBlockN == 128 ? kk * 32 : (kk / 4) * 64 * 128 + (kk % 4) * 32;
      const u32 v_off = Sm90::kBlockN == 128 ? kk * 32 : (kk / 4) * Sm90::kHeadDim * 128 + (kk % 4) * 32;
      ptx::warpgroup::wgmma_ss_e4m3<Sm90::kHeadDim>(o, ptx::warpgroup::desc_plus(dp, p_off),
                                                   ptx::warpgroup::desc_plus(dv, v_off), 1);
    }
    ptx::warpgroup::commit();
    ptx::warpgroup::fence_operand(o);
  }
}

// O (64 rows x head dim) += P · V over key steps of 16. V is [key][d] in smem, i.e. MN-major for
// this GEMM (transposed B): 8-key groups 1024 bytes apart, d blocks of 64 block_n*128 bytes apart.
// With Sm90::kSumMma the GEMM is 8 columns wider, over ones, and those columns accumulate P's
// row sums into lsum (lanes' [0], [1]: row g; [2], [3]: row g + 8).
FC_DEVICE void gemm_pv(float (&o)[kD8][4], float (&lsum)[4], u32 (&pa)[kK16][4], const Sm90Smem& sm, int stage) {
  fence_pv_acc(o, lsum);
  ptx::warpgroup::fence_operand(pa);
  ptx::warpgroup::fence();
  // As in gemm_qk: the stage's base descriptor plus each step's offset (desc_plus), in the overlapped
  // loop (d64 +0.5-2% from 2K keys on the H100, bench/NOTES.md session 18 item 6); the serial loops
  // keep a descriptor built per step (the d64 two-consumer causal tile lost 4-7% with the add).
  const u32 v0 = sm.v(stage);
  const u32 lbo = Sm90::kFp8 ? 16u : Sm90::kSumMma ? sm.ones - v0 : (u32)(Sm90::kBlockN * 128);
  const u64 dv = ptx::warpgroup::make_desc(v0, lbo, 1024);
  auto step_desc = [&](u32 off) -> u64 {
    return Sm90::kOverlap ? ptx::warpgroup::desc_plus(dv, off) : ptx::warpgroup::make_desc(v0 + off, lbo, 1024);
  };
#pragma unroll
  for (int kk = 0; kk < kK16; ++kk) {
    if constexpr (Sm90::kFp8) {
      // Transposed V, K-major: [key block of 128][d][128 keys], a k32 step is 32 bytes of a row;
      // the ones are the 8 rows after the head dim's (sm.ones_rows), the next 1024-byte atom.
      const u64 db = step_desc((kk / 4) * Sm90::kHeadDim * 128 + (kk % 4) * 32);
      if constexpr (Sm90::kSumMma) {
        ptx::warpgroup::wgmma_rs_sum_e4m3<Sm90::kHeadDim>(o, lsum, pa[kk], db);
      } else {
        ptx::warpgroup::wgmma_rs_e4m3<Sm90::kHeadDim>(o, pa[kk], db);
      }
    } else {
      const u64 db = step_desc(kk * 16 * 128);
      if constexpr (Sm90::kSumMma) {
        // d64: the columns past 64 are the next 64-wide block, one leading byte offset on: the
        // base descriptor points it at the ones block, which this step reads at the same row
        // offset (kk * 16 rows) as V.
        ptx::warpgroup::wgmma_rs_sum<Sm90::kHeadDim, Traits::kBf16, 1>(o, lsum, pa[kk], db);
      } else {
        ptx::warpgroup::wgmma_rs<Sm90::kHeadDim, Traits::kBf16, 1>(o, pa[kk], db);
      }
    }
  }
  ptx::warpgroup::commit();
  fence_pv_acc(o, lsum);
  ptx::warpgroup::fence_operand(pa);
}

// Rows whose reference max did not move have alpha exactly 1: with the softmax's slack
// (attn::OnlineSoftmax) that is nearly every block after the first, which then skips the
// head-dim multiplies. The test is per warp, so the branch never diverges. The MMA row sums
// (kSumMma) take the softmax's alpha_l, without FP8's change of v factor that alpha may carry.
FC_DEVICE void rescale(float (&o)[kD8][4], float (&lsum)[4], const float (&alpha)[2], const float (&alpha_l)[2]) {
  if (!__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f || alpha_l[0] != 1.f || alpha_l[1] != 1.f)) return;
#pragma unroll
  for (int i = 0; i < kD8; ++i) {
    o[i][0] *= alpha[0];
    o[i][1] *= alpha[0];
    o[i][2] *= alpha[1];
    o[i][3] *= alpha[1];
  }
  if constexpr (Sm90::kSumMma) {
    lsum[0] *= alpha_l[0];
    lsum[1] *= alpha_l[0];
    lsum[2] *= alpha_l[1];
    lsum[3] *= alpha_l[1];
  }
}

// Everything a consumer warpgroup does between the Q tile landing and the epilogue.
struct Mainloop {
  const FwdParams& f;
  const Sm90Smem& sm;
  u32 q;  // this tile's Q slot
  int wg, lane, warp_row0, n_blocks;
  int it0;  // K/V blocks this CTA consumed before this tile: the stage ring continues across tiles
  // The tile's first key block, its sequence's key count and diagonals (sm90::Tile). Dense
  // variants read the params instead, so these stay dead and cost no registers.
  int n_block0_, seqlen_k_, causal_offset_, window_left_;
  FC_DEVICE int n_block0() const { return Traits::kInfer || Traits::kLocal ? n_block0_ : 0; }
  FC_DEVICE int seqlen_k() const { return Traits::kInfer ? seqlen_k_ : f.seqlen_k; }
  FC_DEVICE int causal_offset() const { return Traits::kInfer ? causal_offset_ : f.causal_offset; }
  FC_DEVICE int window_left() const { return Traits::kInfer ? window_left_ : f.window_offset_left; }
  // scale_log2 of this warp's rows: FP8 folds the q descale (and k's unless per block) in.
  float sl2;
  // FP8 block quantization of k: key block j's descale at kd_blk[j * f.k_descale_stride_blk]; null
  // otherwise.
  const float* kd_blk;
  // FP8 block quantization of v: key block j's descale at vd_blk[j * f.v_descale_stride_blk]; null
  // otherwise. O then accumulates in units of the current block's factor: before P_j·V_j adds in,
  // O is rescaled by vd_{j-1} / vd_j along with the softmax's alpha (so every block pays the
  // head-dim multiplies), and the epilogue multiplies by the last block's factor (last_vd).
  const float* vd_blk;
  int rot_;  // Sm90::kRotate: the tile's first key block (scheduler.cuh Tile::rot)

  FC_DEVICE float vd_of(int j) const { return vd_blk[(n_block0() + j) * f.v_descale_stride_blk]; }
  FC_DEVICE float last_vd(float vd) const {
    if constexpr (Sm90::kFp8) {
      if (vd_blk != nullptr && n_blocks > 0) return vd_of(n_blocks - 1);
    }
    return vd;
  }
  // Rescales O (and the MMA row sums) before block j's P·V: by the softmax's alpha, and O also
  // by the change of v's factor.
  FC_DEVICE void rescale_for(float (&o)[kD8][4], float (&lsum)[4], const float (&alpha)[2], int j) const {
    float alpha_o[2] = {alpha[0], alpha[1]};
    if constexpr (Sm90::kFp8) {
      if (vd_blk != nullptr && j > 0) {
        const float r = vd_of(j - 1) / vd_of(j);
        alpha_o[0] *= r;
        alpha_o[1] *= r;
      }
    }
    rescale(o, lsum, alpha_o, alpha);
  }

  FC_DEVICE int stage(int j) const { return (it0 + j) % Sm90::kStages; }

  // This warpgroup's P tile (Sm90::kPSmem).
  FC_DEVICE u32 p_tile() const { return sm.p + wg * Sm90::kPBytesPerWg; }
  // P of the block just softmaxed, made ready for its P·V: packed into A fragments, and with
  // Sm90::kPSmem written to the warpgroup's P tile (the previous P·V has completed).
  FC_DEVICE void make_p(u32 (&pa)[kK16][4], const float (&sc)[kN8][4]) const {
    pack_p(pa, sc);
    if constexpr (Sm90::kPSmem) store_p(pa, p_tile(), wg, (threadIdx.x >> 5) & 3, lane);
  }
  FC_DEVICE void issue_pv(float (&o)[kD8][4], float (&lsum)[4], u32 (&pa)[kK16][4], int s) const {
    if constexpr (Sm90::kPSmem) {
      gemm_pv_smem(o, p_tile(), sm, s);
    } else {
      gemm_pv(o, lsum, pa, sm, s);
    }
  }

  // This warpgroup is done reading a K or V stage. With clusters both CTAs' producers refill it
  // (each multicasts half of the block), so one thread per warp tells both (after the warp's
  // wgmma wait, which every lane has passed).
  FC_DEVICE void release(u32 bar) const {
    if constexpr (Sm90::kCluster == 1) {
      ptx::mbar_arrive(bar);
    } else {
      if (lane == 0) {
        ptx::mbar_arrive(bar);
        ptx::mbar_arrive_cluster(bar, ptx::cluster_ctarank() ^ 1u);
      }
    }
  }

  // Ping-pong turn-taking around each batch of GEMM issues: wait for this warpgroup's turn
  // (barrier 1 + wg, completed by the other warpgroup's arrival), issue, hand the turn over.
  // All warpgroups of a CTA issue the same number of batches per tile (n_blocks + 1 overlapped,
  // 2 * n_blocks serial), so the alternation carries across tiles.
  FC_DEVICE void turn_begin() const {
    if constexpr (Sm90::kPingPong) ptx::named_bar_sync(kBarTurn0 + wg, 256);
  }
  FC_DEVICE void turn_end() const {
    if constexpr (Sm90::kPingPong) ptx::named_bar_arrive(kBarTurn0 + (wg + 1) % Sm90::kConsumers, 256);
  }
  FC_DEVICE u32 parity(int j) const { return ((it0 + j) / Sm90::kStages) & 1; }

  // Scores of block j as logits (softcap) and masked where the ragged end or one of this warp's
  // diagonals cuts the block.
  FC_DEVICE void mask(float (&s)[kN8][4], int j) const {
    if constexpr (Sm90::kFp8) {
      // Block-quantized k: each key block has its own descale (a multiply per score; per tensor or
      // per head it is folded into sl2 instead).
      if (kd_blk != nullptr) {
        const float kd = kd_blk[(n_block0() + j) * f.k_descale_stride_blk];
#pragma unroll
        for (int i = 0; i < kN8; ++i) {
#pragma unroll
          for (int e = 0; e < 4; ++e) s[i][e] *= kd;
        }
      }
    }
    if constexpr (Traits::kSoftcap) attn::apply_softcap(s, f.softcap_pre);
    const int n0 = (n_block0() + rotated_block(j, rot_, n_blocks)) * Sm90::kBlockN;
    const bool need = attn::block_needs_mask<Traits::kCausal, Traits::kLocal>(n0, Sm90::kBlockN, warp_row0, seqlen_k(),
                                                                              causal_offset(), window_left());
    if (need) {
      attn::apply_mask<Traits::kCausal, Traits::kLocal>(s, n0, warp_row0, seqlen_k(), causal_offset(), window_left(),
                                                        lane);
    }
  }

  // The softmax of one block. FC_SM90_PROBE (timing probes only; outputs are wrong), bits: 1 runs
  // the recurrence without the exponentials (no MUFU), 2 skips it (P = the raw scores, alpha = 1),
  // to measure how much of a block's time the softmax holds the tensor cores up; 4 (producer.cuh)
  // stops reloading K/V once the ring is full; 8 (run_overlapped) takes Q·Kᵀ's A operand from
  // registers (the stale P fragments) instead of shared memory.
  FC_DEVICE void softmax_update(Softmax& softmax, float (&sc)[kN8][4], float (&alpha)[2]) const {
#if defined(FC_SM90_PROBE) && (FC_SM90_PROBE & 2)
    alpha[0] = alpha[1] = 1.f;
#else
    softmax.update(sc, sl2, alpha);
#endif
  }

  // One block at a time: Q·Kᵀ, wait, softmax, P·V, wait. The two consumer warpgroups overlap each
  // other, nothing overlaps within one.
  FC_DEVICE void run_serial(Softmax& softmax, float (&o)[kD8][4], float (&lsum)[4]) const {
    for (int j = 0; j < n_blocks; ++j) {
      const int s = stage(j);
      const u32 par = parity(j);
      float sc[kN8][4];
      ptx::mbar_wait(sm.k_full(s), par);
      turn_begin();
      gemm_qk(sc, sm, q, wg, s);
      turn_end();
      ptx::warpgroup::wait<0>();
      ptx::warpgroup::fence_operand(sc);
      release(sm.k_empty(s));
      mask(sc, j);
      float alpha[2];
      softmax_update(softmax, sc, alpha);
      rescale_for(o, lsum, alpha, j);
      u32 pa[kK16][4];
      make_p(pa, sc);
      ptx::mbar_wait(sm.v_full(s), par);
      turn_begin();
      issue_pv(o, lsum, pa, s);
      turn_end();
      ptx::warpgroup::wait<0>();
      fence_pv_acc(o, lsum);
      release(sm.v_empty(s));
    }
  }

  // A warpgroup whose rows all lie past the sequence's end (the last query block's, when the
  // sequence leaves at least 64 of its rows empty) computes nothing: it takes each K / V stage's
  // landing and releases it, and its ping-pong turns, in the order the working loop does, so the
  // stage ring and the turns stay in step while the CTA's other warpgroups have the tensor cores and
  // the MUFU to themselves. FC_SM90_IDLE_WG=0 computes such rows anyway (and throws them away).
  FC_DEVICE void run_idle() const {
    if (n_blocks == 0) return;
    if constexpr (Sm90::kOverlap) {
      ptx::mbar_wait(sm.k_full(stage(0)), parity(0));
      turn_begin();
      turn_end();
      release(sm.k_empty(stage(0)));
      for (int j = 1; j < n_blocks; ++j) {
        ptx::mbar_wait(sm.k_full(stage(j)), parity(j));
        ptx::mbar_wait(sm.v_full(stage(j - 1)), parity(j - 1));
        turn_begin();
        turn_end();
        release(sm.k_empty(stage(j)));
        release(sm.v_empty(stage(j - 1)));
      }
      ptx::mbar_wait(sm.v_full(stage(n_blocks - 1)), parity(n_blocks - 1));
      turn_begin();
      turn_end();
      release(sm.v_empty(stage(n_blocks - 1)));
    } else {
      for (int j = 0; j < n_blocks; ++j) {
        ptx::mbar_wait(sm.k_full(stage(j)), parity(j));
        turn_begin();
        turn_end();
        release(sm.k_empty(stage(j)));
        ptx::mbar_wait(sm.v_full(stage(j)), parity(j));
        turn_begin();
        turn_end();
        release(sm.v_empty(stage(j)));
      }
    }
  }

  // Clusters, causal: the pair streams its longer tile's key blocks; this tile's extra ones
  // (n_blocks .. n_stream - 1, past its diagonal) are released unread so the ring stays in step.
  FC_DEVICE void drain(int n_stream) const {
    for (int j = n_blocks; j < n_stream; ++j) {
      ptx::mbar_wait(sm.k_full(stage(j)), parity(j));
      release(sm.k_empty(stage(j)));
      ptx::mbar_wait(sm.v_full(stage(j)), parity(j));
      release(sm.v_empty(stage(j)));
    }
  }

  // Software-pipelined (FlashAttention-3's intra-warpgroup overlap): Q·K_jᵀ and P_{j-1}·V_{j-1}
  // are in flight together, and the softmax of block j runs while P_{j-1}·V_{j-1} is still on the
  // tensor cores.
  FC_DEVICE void run_overlapped(Softmax& softmax, float (&o)[kD8][4], float (&lsum)[4]) const {
    if (n_blocks == 0) return;
    float sc[kN8][4];
    u32 pa[kK16][4];
    float alpha[2];
    ptx::mbar_wait(sm.k_full(stage(0)), parity(0));
    turn_begin();
    gemm_qk(sc, sm, q, wg, stage(0));
    turn_end();
    ptx::warpgroup::wait<0>();
    ptx::warpgroup::fence_operand(sc);
    release(sm.k_empty(stage(0)));
    mask(sc, 0);
    softmax_update(softmax, sc, alpha);  // O is still 0: alpha has nothing to rescale
    make_p(pa, sc);
    for (int j = 1; j < n_blocks; ++j) {
      const int s = stage(j), sp = stage(j - 1);
      ptx::mbar_wait(sm.k_full(s), parity(j));
      ptx::mbar_wait(sm.v_full(sp), parity(j - 1));
      turn_begin();
#if defined(FC_SM90_PROBE) && (FC_SM90_PROBE & 8)
      gemm_qk_rs(sc, pa, sm, q, wg, s);
#else
      gemm_qk(sc, sm, q, wg, s);
#endif
      issue_pv(o, lsum, pa, sp);
      turn_end();
      ptx::warpgroup::wait<1>();  // groups retire in order: Q·K_jᵀ is done, P·V may still run
      ptx::warpgroup::fence_operand(sc);
      release(sm.k_empty(s));
      mask(sc, j);
      softmax_update(softmax, sc, alpha);
      // P_{j-1}'s registers are read by the P·V still in flight, but to ptxas's register allocator
      // they die at the wgmma's issue: it handed them to the softmax's temporaries and then had
      // to move the wait for P·V (WARPGROUP.DEPBAR) above the whole softmax, which so ran after
      // this warpgroup's P·V instead of under it. A use here that ptxas cannot drop keeps them
      // allocated until the softmax is done.
      if constexpr (kKeepP && !Sm90::kPSmem) ptx::warpgroup::keep_live(pa, it0 < 0);
      ptx::warpgroup::wait<0>();
      fence_pv_acc(o, lsum);
      ptx::warpgroup::fence_operand(pa);
      release(sm.v_empty(sp));
      rescale_for(o, lsum, alpha, j);
      make_p(pa, sc);
    }
    const int last = stage(n_blocks - 1);
    ptx::mbar_wait(sm.v_full(last), parity(n_blocks - 1));
    turn_begin();
    issue_pv(o, lsum, pa, last);
    turn_end();
    ptx::warpgroup::wait<0>();
    fence_pv_acc(o, lsum);
    release(sm.v_empty(last));
  }
};

}  // namespace sm90::consumer
