// Producer warpgroup: one thread issues every TMA load (Q once, then K and V per key block into
// the stage ring), throttled by the consumers' k_empty / v_empty arrivals.
#pragma once
#include "../common/params.cuh"
#include "scheduler.cuh"
#include "smem.cuh"

namespace sm90::producer {

// Pool rows of a paged key block (keys n0 .. n0 + block_n - 1 of the tile's sequence): one box per
// page the block spans (min(page_size, block_n) rows each), at pool row page * page_size + offset.
// K and V share the table, so the rows are looked up once per block, before the producer waits for
// the stage: the table loads (independent of each other) then overlap that wait instead of
// following it on the way to the refill.
struct PagedRows {
  static constexpr int kMax = Sm90::kBlockN / 16;  // page_size >= 16 (checked by the host)
  int row[kMax];
  int box;

  FC_DEVICE void lookup(const Sm90Params& p, const Tile& x, int n0) {
    const FwdParams& f = p.base;
    const int* table = reinterpret_cast<const int*>(f.block_table) + x.b * f.block_table_stride_b;
    box = min(f.page_size, Sm90::kBlockN);
    // page_size is a power of two (checked by the host): shifts and masks, not integer divisions.
    const int shift = __ffs(f.page_size) - 1;
    // The table has ceil(seqlen_k / page_size) valid entries per sequence (checked by the host);
    // boxes past the sequence's end re-read its last page, and their keys are masked.
    const int last_page = (f.seqlen_k - 1) >> shift;
    const int max_page = (p.total_k >> shift) - 1;
#pragma unroll
    for (int i = 0; i < kMax; ++i) {
      const int key = n0 + i * box;
      if (i * box < Sm90::kBlockN) {
        const int page = min(max(table[min(key >> shift, last_page)], 0), max_page);
        row[i] = (page << shift) + (key & (f.page_size - 1));
      }
    }
  }
};

// Cluster of two (config.cuh kCluster): this CTA's half of a K or 16-bit V block, every other d
// block from d block `rank`, multicast into both CTAs (the peer loads the other half into both).
FC_DEVICE void load_kv_half(u32 dst, const TmaDesc* map, const Tile& x, int n0, u32 bar, u32 rank) {
#pragma unroll
  for (int db = 0; db < Sm90::kDBlocks; ++db) {
    if ((u32)db % 2 == rank) {
      ptx::tma_load_4d_multicast(dst + db * Sm90::kBlockN * 128, map, db * Sm90::kDBlockElems, n0, x.hk, x.b, bar,
                                 (u16)0x3);
    }
  }
}

// One K block, or a 16-bit V block, into `dst`. Contiguous and varlen K/V take one box per d block;
// a paged pool one per d block and page (`pr`, looked up by the caller); a cluster CTA its half.
// The byte count is always a full block: TMA counts the zero-filled rows of a box past the tensor
// (and with clusters, the peer's half lands on this CTA's barrier too).
FC_DEVICE void load_kv(u32 dst, const TmaDesc* map, const Sm90Params& p, const Tile& x, int n0, const PagedRows& pr,
                       u32 bar) {
  const FwdParams& f = p.base;
  if constexpr (Sm90::kCluster > 1) {
    load_kv_half(dst, map, x, n0, bar, ptx::cluster_ctarank());
    return;
  }
  if (Traits::kInfer && f.block_table != 0) {
#pragma unroll
    for (int i = 0; i < PagedRows::kMax; ++i) {
      const int r = i * pr.box;
      if (r < Sm90::kBlockN) {
#pragma unroll
        for (int db = 0; db < Sm90::kDBlocks; ++db) {
          ptx::tma_load_4d(dst + db * Sm90::kBlockN * 128 + r * 128, map, db * Sm90::kDBlockElems, pr.row[i], x.hk,
                           0, bar);
        }
      }
    }
    return;
  }
  const int row = Traits::kInfer ? x.k_row0 + n0 : n0;
  const int batch = Traits::kInfer && f.cu_seqlens_k != 0 ? 0 : x.b;
#pragma unroll
  for (int db = 0; db < Sm90::kDBlocks; ++db) {
    ptx::tma_load_4d(dst + db * Sm90::kBlockN * 128, map, db * Sm90::kDBlockElems, row, x.hk, batch, bar);
  }
}

// Clusters: the tile-pair ticket of this CTA's `tcount`-th tile. The leader (rank 0) takes it
// from the global counter, as a CTA does without clusters, and writes it into the peer's shared
// memory; the peer's producer waits for it and tells the leader the slot may be written again.
FC_DEVICE int pair_ticket(const Sm90Smem& sm, unsigned* counter, int num_pairs, int tcount, int slot) {
  const u32 use = (u32)(tcount / Sm90::kQStages);
  if (ptx::cluster_ctarank() == 0) {
    const int pair = (int)atomicAdd(counter, 1u);
    // Every leader takes exactly one ticket past the last pair; the largest of those zeroes the
    // counter for the next launch (as without clusters, with one ticket per cluster).
    if (pair == num_pairs + (int)ptx::num_clusters_x() - 1) atomicExch(counter, 0u);
    if (tcount >= Sm90::kQStages) ptx::mbar_wait_cluster(sm.pair_empty(slot), (use - 1) & 1);
    ptx::st_and_arrive_cluster(sm.pair_ticket(slot), (u32)pair, sm.pair_full(slot), 1);
    return pair;
  }
  ptx::mbar_wait_cluster(sm.pair_full(slot), use & 1);
  const int pair = (int)ptx::ld_shared_u32(sm.pair_ticket(slot));
  // Not after the last ticket: the leader waits for nothing more and may be leaving.
  if (pair < num_pairs) ptx::mbar_arrive_cluster_release(sm.pair_empty(slot), 0);
  return pair;
}

// Loads every tile this CTA owns. `it` counts K/V blocks across tiles, so the stage ring runs
// ahead into the next tile while the consumers finish the current one; Q goes to alternating
// slots for the same reason.
FC_DEVICE void run(const Sm90Params& p, const Sm90Smem& sm, const Scheduler& sched) {
  const FwdParams& f = p.base;
  ptx::prefetch_tma_desc(&p.tma_q);
  ptx::prefetch_tma_desc(&p.tma_k);
  ptx::prefetch_tma_desc(&p.tma_v);
  int it = 0;
  unsigned* counter = reinterpret_cast<unsigned*>(p.tile_counter);
  for (int tcount = 0;; ++tcount) {
    const int slot = tcount % Sm90::kQStages;
    // The ticket first: its L2 round trip then overlaps the wait for the Q slot (with one slot,
    // d256, the consumers' whole current tile) instead of following it. Part of a session-8 try
    // whose other half (releasing Q early) was reverted; d256 measured level with both, and every
    // later run of that session had this order (bench/NOTES.md, session 8, item 3).
    int t;
    if constexpr (Sm90::kCluster > 1) {
      // Tile pairs are query blocks 2q, 2q + 1 of one head (tiles 2p, 2p + 1 in the scheduler's
      // order, host: an even number of query blocks per head); this CTA takes its rank's tile.
      const int pair = pair_ticket(sm, counter, sched.num_tiles / 2, tcount, slot);
      t = pair < sched.num_tiles / 2 ? 2 * pair + (int)ptx::cluster_ctarank() : sched.num_tiles;
    } else {
      t = (int)atomicAdd(counter, 1u);
    }
    if constexpr (Traits::kInfer) {
      while (t < sched.num_tiles && sched.empty(sched.tile(t))) t = (int)atomicAdd(counter, 1u);
    }
    // The consumers have read this slot's previous tile index and are done with its Q. With two
    // slots that was the tile before the one they are working on now, so this rarely waits.
    if (tcount >= Sm90::kQStages) ptx::mbar_wait(sm.q_empty(slot), ((tcount / Sm90::kQStages) - 1) & 1);
    PublishedTile* published = sm.tile_of(slot);
    // -1: no tile left (the consumers then need no tile count of their own).
    published->t = t < sched.num_tiles ? t : -1;
    published->it0 = it;
    if (t >= sched.num_tiles) {
      // Every CTA's producer takes exactly one ticket past the last tile, so the largest of those
      // is the launch's last atomic on the counter: its holder zeroes it for the next launch that
      // gets this slot (no memset node before every launch; the host zeroes the ring once).
      if (Sm90::kCluster == 1 && t == sched.num_tiles + (int)(gridDim.x * gridDim.y * gridDim.z) - 1) {
        atomicExch(counter, 0u);
      }
      // No tile left: a plain arrival completes q_full's phase and tells the consumers to stop.
      ptx::mbar_arrive(sm.q_full(slot));
      if constexpr (Sm90::kVtSmem) {
        // The transposer warps stop at the staging phase after the last block, which carries the
        // stop word instead of data. Written only once they have released every staging slot:
        // a warp still waiting for an earlier block must not see it.
        for (int k = 1; k <= Sm90::kVsSlots && k <= it; ++k) {
          ptx::mbar_wait(sm.vs_empty((it - k) % Sm90::kVsSlots), ((it - k) / Sm90::kVsSlots) & 1);
        }
        ptx::st_shared_u32(sm.vs_stop(), 1u);
        ptx::mbar_arrive(sm.vs_full(it % Sm90::kVsSlots));
      }
      break;
    }
    const Tile x = sched.tile(t);
    published->x = x;
    // Key blocks to stream: the tile's own, or with clusters its pair's longer tile's (causal
    // tiles of adjacent query blocks differ by the diagonal; the shorter one's consumers release
    // the extra blocks unread). Published with the tile, by q_full's arrival below.
    int n_stream = x.n_blocks;
    if constexpr (Sm90::kCluster > 1 && Traits::kCausal) {
      n_stream = max(n_stream, sched.tile(t ^ 1).n_blocks);
      published->n_stream = n_stream;
    }
    ptx::mbar_arrive_expect_tx(sm.q_full(slot), Sm90::kQBytes);
    const int q_row = Traits::kInfer ? x.q_row0 + x.m0 : x.m0;
    const int q_batch = Traits::kInfer && f.cu_seqlens_q != 0 ? 0 : x.b;
#pragma unroll
    for (int db = 0; db < Sm90::kDBlocks; ++db) {
      ptx::tma_load_4d(sm.q(slot) + db * Sm90::kBlockM * 128, &p.tma_q, db * Sm90::kDBlockElems, q_row, x.h, q_batch,
                       sm.q_full(slot));
    }
    for (int j = 0; j < n_stream; ++j, ++it) {
      const int s = it % Sm90::kStages;
      // Stage s was last used by block it - kStages; wait until every consumer released it.
      const u32 reuse_parity = ((it / Sm90::kStages) - 1) & 1;
      const int n0 = (x.n_block0 + rotated_block(j, x.rot, x.n_blocks)) * Sm90::kBlockN;
      PagedRows pr;
      if (Traits::kInfer && f.block_table != 0) pr.lookup(p, x, n0);
      // With clusters both CTAs' consumers release a stage (consumer.cuh Mainloop::release), and
      // the pair streams the same key blocks in the same ring positions (equal n_blocks, same tile
      // count). The waits acquire at CTA scope as for local releases: what they order is the
      // peer's wgmma reads (complete at its wgmma wait, before its arrival) against this TMA's
      // writes, both async-proxy accesses to shared memory; an acquire at cluster scope would also
      // invalidate this SM's L1 on every stage (CCTL.IVALL in the SASS).
      if (it >= Sm90::kStages) ptx::mbar_wait(sm.k_empty(s), reuse_parity);
#if defined(FC_SM90_PROBE) && (FC_SM90_PROBE & 4)
      // Timing probe (consumer.cuh): once the ring is full, blocks reuse whatever the stage holds.
      if (!Sm90::kVtSmem && it >= Sm90::kStages) {
        ptx::mbar_arrive(sm.k_full(s));
        ptx::mbar_wait(sm.v_empty(s), reuse_parity);
        ptx::mbar_arrive(sm.v_full(s));
        continue;
      }
#endif
      ptx::mbar_arrive_expect_tx(sm.k_full(s), Sm90::kKBytes);
      load_kv(sm.k(s), &p.tma_k, p, x, n0, pr, sm.k_full(s));
      if constexpr (Sm90::kVtSmem) {
        // V as K, into a staging slot; the transposer warps (transpose.cuh) wait for the stage's
        // release, write its V tile and complete v_full.
        const int i = it % Sm90::kVsSlots;
        if (it >= Sm90::kVsSlots) ptx::mbar_wait(sm.vs_empty(i), ((it / Sm90::kVsSlots) - 1) & 1);
        ptx::mbar_arrive_expect_tx(sm.vs_full(i), Sm90::kKBytes);
        load_kv(sm.vs_slot(i), &p.tma_v, p, x, n0, pr, sm.vs_full(i));
        continue;
      }
      if (it >= Sm90::kStages) ptx::mbar_wait(sm.v_empty(s), reuse_parity);
      ptx::mbar_arrive_expect_tx(sm.v_full(s), Sm90::kVLoadBytes);
      if constexpr (Sm90::kFp8) {
        // Transposed V [b][kv head][d][key]: one box of head_dim rows by 128 keys per key block.
#pragma unroll
        for (int kb = 0; kb < Sm90::kBlockN / 128; ++kb) {
          ptx::tma_load_4d(sm.v(s) + kb * Sm90::kHeadDim * 128, &p.tma_v, n0 + kb * 128, 0, x.hk, x.b, sm.v_full(s));
        }
      } else {
        load_kv(sm.v(s), &p.tma_v, p, x, n0, pr, sm.v_full(s));
      }
    }
  }
}

}  // namespace sm90::producer
