// Producer of the Hopper backward: one thread issues every load. K and V of the CTA's key block
// once, then per step Q and dO (TMA, 128-byte swizzle) and the step's lse2 and dsum rows (plain
// bulk copies) into a two-stage ring, throttled by the consumers' q_empty arrivals.
#pragma once
#include "../common/params.cuh"
#include "bwd_config.cuh"
#include "bwd_smem.cuh"
#include "bwd_zero.cuh"

namespace sm90::bwd::producer {

// One step's loads into stage s: Q and dO rows m0 .. of query head h (TMA), and their lse2 and
// dsum rows (bulk copies), all counted by q_full[s].
FC_DEVICE void load_step(const Sm90BwdParams& p, const Sm90BwdSmem& sm, const Work& w, int s, int m0, int h) {
  const BwdParams& f = p.base;
#pragma unroll
  for (int db = 0; db < Sm90Bwd::kDBlocks; ++db) {
    // Query rows past seqlen_q read as zeros; their lse2 is +inf (bwd/prep.cu), so P = 0 there.
    ptx::tma_load_4d(sm.q(s) + db * Sm90Bwd::kBlockM * 128, &p.tma_q, db * 64, m0, h, w.b, sm.q_full(s));
    ptx::tma_load_4d(sm.dout(s) + db * Sm90Bwd::kBlockM * 128, &p.tma_do, db * 64, m0, h, w.b, sm.q_full(s));
  }
  // lse2 and dsum are padded to whole query blocks by bwd/prep.cu: no bounds to check; rows are
  // 16-byte aligned because seqlen_q_pad is a multiple of block_m and the scratch 256-byte aligned.
  const i64 row0 = ((i64)w.b * f.heads + h) * ((i64)f.num_m_blocks * Sm90Bwd::kBlockM) + m0;
  ptx::bulk_load(sm.lse2(s), reinterpret_cast<const float*>(f.lse2) + row0, Sm90Bwd::kVecBytes, sm.q_full(s));
  ptx::bulk_load(sm.dsum(s), reinterpret_cast<const float*>(f.dsum) + row0, Sm90Bwd::kVecBytes, sm.q_full(s));
}

constexpr u32 kStepBytes = 2 * Sm90Bwd::kQBytes + 2 * Sm90Bwd::kVecBytes;
// The first step's Q, dO, lse2 and dsum loaded before the producer waits for the zeroed dQ
// accumulator, and only its q_full arrival after the wait. Without it the loads themselves waited:
// the counter's acquire (an L2 round trip), then the Q load's, on every CTA's way to its first
// GEMM. Session 27 (bench/NOTES.md), A B A B: +0.4-2.3% on the d128 rows and the d64 non-causal
// ones. Not in the d64 causal kernels, whose loop ptxas then scheduled otherwise (shorter, and
// 2.7% slower at S4K), nor in the softcap or ping-pong kernels at d64, whose consumers then spilled
// (NVRTC 13.0.88).
constexpr bool kEarlyFirstLoad = !(Sm90Bwd::kHeadDim == 64 && (Sm90Bwd::kCausal || Sm90Bwd::kSoftcap || Sm90Bwd::kPingPong));

FC_DEVICE void run(const Sm90BwdParams& p, const Sm90BwdSmem& sm, const Work& w) {
  const BwdParams& f = p.base;
  ptx::prefetch_tma_desc(&p.tma_q);
  ptx::prefetch_tma_desc(&p.tma_do);
  ptx::prefetch_tma_desc(&p.tma_k);
  ptx::prefetch_tma_desc(&p.tma_v);
  // Keys past seqlen_k read as zeros (TMA out-of-bounds fill) and are masked by the consumers.
  ptx::mbar_arrive_expect_tx(sm.kv_full(), 2 * Sm90Bwd::kKVBytes);
#pragma unroll
  for (int db = 0; db < Sm90Bwd::kDBlocks; ++db) {
    ptx::tma_load_4d(sm.k() + db * Sm90Bwd::kBlockN * 128, &p.tma_k, db * 64, w.n0, w.hk, w.b, sm.kv_full());
    ptx::tma_load_4d(sm.v() + db * Sm90Bwd::kBlockN * 128, &p.tma_v, db * 64, w.n0, w.hk, w.b, sm.kv_full());
  }
  if constexpr (kEarlyFirstLoad) {
    // The first step's loads go out beside K and V, and only its q_full arrival waits for the
    // zeroed accumulator (below).
    ptx::mbar_expect_tx(sm.q_full(0), kStepBytes);
    load_step(p, sm, w, 0, w.m0(0), w.h0);
  }
  // The accumulator rows the consumers' bulk reduces add to are zeroed (sm90/bwd_zero.cuh) before
  // this thread's first q_full arrival: the consumers wait for that arrival (mbarrier, release /
  // acquire) before their first reduce.
  if constexpr (Sm90Bwd::kDqSmem) {
    if (f.zero_lag > 0) zero::wait(f, sm);
  }
  if constexpr (kEarlyFirstLoad) ptx::mbar_arrive(sm.q_full(0));
  // Walk (head, query block) incrementally: no divisions in the loop.
  int h = w.h0, mi = 0;
  for (int i = kEarlyFirstLoad ? 1 : 0; i < w.steps; ++i) {
    if (kEarlyFirstLoad && ++mi == w.m_count) {
      mi = 0;
      ++h;
    }
    const int s = i % Sm90Bwd::kStages;
    // Stage s was last used by step i - kStages; wait until every consumer thread released it.
    if (i >= Sm90Bwd::kStages) ptx::mbar_wait(sm.q_empty(s), ((i / Sm90Bwd::kStages) - 1) & 1);
    const int m0 = w.m0(mi);
    ptx::mbar_arrive_expect_tx(sm.q_full(s), kStepBytes);
    load_step(p, sm, w, s, m0, h);
    if (!kEarlyFirstLoad && ++mi == w.m_count) {
      mi = 0;
      ++h;
    }
  }
}

}  // namespace sm90::bwd::producer
