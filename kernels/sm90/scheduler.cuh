// Persistent tile scheduler of the Hopper forward: the grid is at most one CTA per SM and each CTA's
// producer takes the next tile from a global atomic counter, so CTAs stay busy until the work runs
// out whatever the tiles cost (causal tiles differ in work by up to S/block_n times). A tile is
// (query block, head, batch) with the query block fastest, so the tiles in flight at one moment
// share a head's K/V in L2; with a causal mask the query blocks of a head go last-first, the ones
// that see the most keys first. Measured on the H100 (bench/NOTES.md): a static round-robin
// assignment lost 30% on long causal rows to imbalance.
#pragma once
#include "../common/params.cuh"
#include "config.cuh"

namespace sm90 {

// A tile: rows_per_head query rows (from m0) of `pack` consecutive query heads (from h) of kv head
// hk; tile row r is query m0 + r % rows_per_head of head h + r / rows_per_head.
struct Tile {
  int m_block, h, b, hk;
  int m0, n_blocks;
};

struct Scheduler {
  const FwdParams& f;
  int head_groups;  // heads / pack: tiles per (query block, batch)
  int num_tiles;

  FC_DEVICE explicit Scheduler(const FwdParams& p)
      : f(p), head_groups(p.heads / (Sm90::kBlockM / p.rows_per_head)),
        num_tiles(p.num_m_blocks * head_groups * p.batch) {}

  FC_DEVICE Tile tile(int t) const {
    Tile x;
    const int mi = t % f.num_m_blocks;
    const int hb = t / f.num_m_blocks;
    x.m_block = Traits::kCausal ? f.num_m_blocks - 1 - mi : mi;
    x.h = (hb % head_groups) * (Sm90::kBlockM / f.rows_per_head);
    x.b = hb / head_groups;
    x.hk = x.h / (f.heads / f.kv_heads);
    x.m0 = x.m_block * f.rows_per_head;
    int n_end = f.seqlen_k;
    if (Traits::kCausal) n_end = min(n_end, x.m0 + f.rows_per_head + f.causal_offset);
    x.n_blocks = n_end > 0 ? (n_end + Sm90::kBlockN - 1) / Sm90::kBlockN : 0;
    return x;
  }
};

}  // namespace sm90
