// Persistent tile scheduler of the Hopper forward: the grid is at most one CTA per SM and in round k
// the CTAs take tiles k*G .. k*G+G-1 (G = gridDim.x). A tile is (query block, head, batch) with the
// query block fastest, so the CTAs running at one moment share a head's K/V in L2; with a causal
// mask the query blocks of a head run last-first, the ones that see the most keys first.
// Odd rounds hand the tiles out in reverse (zigzag): with causal masks a CTA that got a heavy tile
// in one round gets a light one in the next. Without it, when the number of query blocks divides
// G, every CTA would keep the same query block in every round (measured: d64 S4K causal fell from
// 409 to 249 TF/s).
#pragma once
#include "../common/params.cuh"
#include "config.cuh"

namespace sm90 {

struct Tile {
  int m_block, h, b, hk;
  int m0, n_blocks;
};

struct Scheduler {
  const FwdParams& f;
  int num_tiles;

  FC_DEVICE explicit Scheduler(const FwdParams& p) : f(p), num_tiles(p.num_m_blocks * p.heads * p.batch) {}

  // Tile of round k for this CTA; >= num_tiles when the CTA is done.
  FC_DEVICE int tile_index(int k) const {
    const int g = gridDim.x, i = blockIdx.x;
    return k * g + ((k & 1) ? g - 1 - i : i);
  }

  FC_DEVICE Tile tile(int t) const {
    Tile x;
    const int mi = t % f.num_m_blocks;
    const int hb = t / f.num_m_blocks;
    x.m_block = Traits::kCausal ? f.num_m_blocks - 1 - mi : mi;
    x.h = hb % f.heads;
    x.b = hb / f.heads;
    x.hk = x.h / (f.heads / f.kv_heads);
    x.m0 = x.m_block * Sm90::kBlockM;
    int n_end = f.seqlen_k;
    if (Traits::kCausal) n_end = min(n_end, x.m0 + Sm90::kBlockM + f.causal_offset);
    x.n_blocks = n_end > 0 ? (n_end + Sm90::kBlockN - 1) / Sm90::kBlockN : 0;
    return x;
  }
};

}  // namespace sm90
