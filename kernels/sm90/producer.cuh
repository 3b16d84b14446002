// Producer warpgroup: one thread issues every TMA load (Q once, then K and V per key block into
// the stage ring), throttled by the consumers' k_empty / v_empty arrivals.
#pragma once
#include "../common/params.cuh"
#include "scheduler.cuh"
#include "smem.cuh"

namespace sm90::producer {

// Loads every tile this CTA owns. `it` counts K/V blocks across tiles, so the stage ring runs
// ahead into the next tile while the consumers finish the current one; Q goes to alternating
// slots for the same reason.
FC_DEVICE void run(const Sm90Params& p, const Sm90Smem& sm, const Scheduler& sched) {
  ptx::prefetch_tma_desc(&p.tma_q);
  ptx::prefetch_tma_desc(&p.tma_k);
  ptx::prefetch_tma_desc(&p.tma_v);
  int it = 0;
  unsigned* counter = reinterpret_cast<unsigned*>(p.tile_counter);
  for (int tcount = 0;; ++tcount) {
    const int slot = tcount % Sm90::kQStages;
    // The consumers have read this slot's previous tile index and are done with its Q. With two
    // slots that was the tile before the one they are working on now, so this rarely waits.
    if (tcount >= Sm90::kQStages) ptx::mbar_wait(sm.q_empty(slot), ((tcount / Sm90::kQStages) - 1) & 1);
    const int t = (int)atomicAdd(counter, 1u);
    int* published = sm.tile_of(slot);
    published[0] = t;
    published[1] = it;
    if (t >= sched.num_tiles) {
      // No tile left: a plain arrival completes q_full's phase and tells the consumers to stop.
      ptx::mbar_arrive(sm.q_full(slot));
      break;
    }
    const Tile x = sched.tile(t);
    ptx::mbar_arrive_expect_tx(sm.q_full(slot), Sm90::kQBytes);
#pragma unroll
    for (int db = 0; db < Sm90::kDBlocks; ++db) {
      ptx::tma_load_4d(sm.q(slot) + db * Sm90::kBlockM * 128, &p.tma_q, db * Sm90::kDBlockElems, x.m0, x.h, x.b,
                       sm.q_full(slot));
    }
    for (int j = 0; j < x.n_blocks; ++j, ++it) {
      const int s = it % Sm90::kStages;
      // Stage s was last used by block it - kStages; wait until every consumer released it.
      const u32 reuse_parity = ((it / Sm90::kStages) - 1) & 1;
      const int n0 = j * Sm90::kBlockN;
      if (it >= Sm90::kStages) ptx::mbar_wait(sm.k_empty(s), reuse_parity);
      ptx::mbar_arrive_expect_tx(sm.k_full(s), Sm90::kKBytes);
#pragma unroll
      for (int db = 0; db < Sm90::kDBlocks; ++db) {
        ptx::tma_load_4d(sm.k(s) + db * Sm90::kBlockN * 128, &p.tma_k, db * Sm90::kDBlockElems, n0, x.hk, x.b,
                         sm.k_full(s));
      }
      if (it >= Sm90::kStages) ptx::mbar_wait(sm.v_empty(s), reuse_parity);
      ptx::mbar_arrive_expect_tx(sm.v_full(s), Sm90::kVBytes);
      if constexpr (Sm90::kFp8) {
        // Transposed V [b][kv head][d][key]: one box of head_dim rows by 128 keys per key block.
#pragma unroll
        for (int kb = 0; kb < Sm90::kBlockN / 128; ++kb) {
          ptx::tma_load_4d(sm.v(s) + kb * Sm90::kHeadDim * 128, &p.tma_v, n0 + kb * 128, 0, x.hk, x.b, sm.v_full(s));
        }
      } else {
#pragma unroll
        for (int db = 0; db < Sm90::kDBlocks; ++db) {
          ptx::tma_load_4d(sm.v(s) + db * Sm90::kBlockN * 128, &p.tma_v, db * 64, n0, x.hk, x.b, sm.v_full(s));
        }
      }
    }
  }
}

}  // namespace sm90::producer
