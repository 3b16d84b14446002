// Persistent tile scheduler of the Hopper forward: the grid is at most one CTA per SM and each CTA's
// producer takes the next tile from a global atomic counter, so CTAs stay busy until the work runs
// out whatever the tiles cost (causal tiles differ in work by up to S/block_n times). A tile is
// (query block, head, batch[, split]) with the query block fastest, so the tiles in flight at one
// moment share a head's K/V in L2; with a causal mask the query blocks of a head go last-first, the
// ones that see the most keys first. Measured on the H100 (bench/NOTES.md): a static round-robin
// assignment lost 30% on long causal rows to imbalance.
#pragma once
#include "../common/params.cuh"
#include "config.cuh"

namespace sm90 {

// A tile: rows_per_head query rows (from m0) of `pack` consecutive query heads (from h) of kv head
// hk; tile row r is query m0 + r % rows_per_head of head h + r / rows_per_head. It runs key blocks
// n_block0 .. n_block0 + n_blocks - 1 (its window, or its split's share of it).
struct Tile {
  int m_block, h, b, hk;
  int m0, n_block0, n_blocks;
  // Sequence b's query and key counts, and where its rows start in packed (varlen) q/o and k/v.
  int seqlen_q, seqlen_k, q_row0, k_row0;
  // This sequence's diagonals (params.cuh: shifted per sequence on the inference paths).
  int causal_offset, window_left;
  int split;
  // Sm90::kRotate: the key loop runs blocks rot, rot + 1, .. n_blocks - 1, 0, .. rot - 1.
  int rot;
};

// Sm90::kRotate: the key block (from the tile's first) that loop step j of n reads, for a tile
// rotated by rot. The producer loads and the consumers mask by the same order.
FC_DEVICE int rotated_block(int j, int rot, int n) {
  if constexpr (Sm90::kRotate) return j + rot < n ? j + rot : j + rot - n;
  return j;
}

struct Scheduler {
  const Sm90Params& p;
  const FwdParams& f;
  int head_groups;  // heads / pack: tiles per (query block, batch)
  int num_tiles;

  FC_DEVICE explicit Scheduler(const Sm90Params& params)
      : p(params), f(params.base), head_groups(f.heads / (Sm90::kBlockM / f.rows_per_head)),
        num_tiles(f.num_m_blocks * head_groups * f.batch * (Traits::kInfer ? f.num_splits : 1)) {
    if (packed_q()) {
      // Only the query blocks each sequence has: no empty tile to hand out and skip (one global
      // atomic each; a mixed batch padded to its longest sequence has mostly empty ones).
      int blocks = 0;
      for (int b = 0; b < f.batch; ++b) blocks += q_blocks(b);
      num_tiles = blocks * head_groups * f.num_splits;
    }
  }

  FC_DEVICE bool packed_q() const { return Traits::kInfer && f.cu_seqlens_q != 0; }

  // Packed (varlen) q: sequence b's first row and query count, clamped to the tensor's rows (the
  // int32 arrays are trusted for values, not for memory safety).
  FC_DEVICE int q_row0(int b) const {
    return min(max(reinterpret_cast<const int*>(f.cu_seqlens_q)[b], 0), p.total_q);
  }
  FC_DEVICE int q_len(int b, int row0) const {
    return min(max(reinterpret_cast<const int*>(f.cu_seqlens_q)[b + 1] - row0, 0), min(f.seqlen_q, p.total_q - row0));
  }
  FC_DEVICE int q_blocks(int b) const { return (q_len(b, q_row0(b)) + f.rows_per_head - 1) / f.rows_per_head; }

  FC_DEVICE Tile tile(int t) const {
    Tile x;
    if (packed_q()) {
      // Split slowest, then sequence, head group, query block (fastest), as the dense order.
      const int per_split = num_tiles / f.num_splits;
      x.split = t / per_split;
      int r = t - x.split * per_split, b = 0, nb = q_blocks(0);
      while (r >= nb * head_groups && b < f.batch - 1) {
        r -= nb * head_groups;
        nb = q_blocks(++b);
      }
      nb = max(nb, 1);
      x.b = b;
      x.m_block = Traits::kCausal ? nb - 1 - r % nb : r % nb;
      x.h = (r / nb) * (Sm90::kBlockM / f.rows_per_head);
    } else {
      const int mi = t % f.num_m_blocks;
      const int hb = t / f.num_m_blocks;
      x.m_block = Traits::kCausal ? f.num_m_blocks - 1 - mi : mi;
      x.h = (hb % head_groups) * (Sm90::kBlockM / f.rows_per_head);
      const int bs = hb / head_groups;
      x.b = Traits::kInfer ? bs % f.batch : bs;
      x.split = Traits::kInfer ? bs / f.batch : 0;
    }
    x.hk = x.h / (f.heads / f.kv_heads);
    x.m0 = x.m_block * f.rows_per_head;
    x.seqlen_q = f.seqlen_q;
    x.seqlen_k = f.seqlen_k;
    x.q_row0 = 0;
    x.k_row0 = 0;
    x.causal_offset = f.causal_offset;
    x.window_left = f.window_offset_left;
    if constexpr (Traits::kInfer) {
      const int* cu_q = reinterpret_cast<const int*>(f.cu_seqlens_q);
      const int* cu_k = reinterpret_cast<const int*>(f.cu_seqlens_k);
      const int* used = reinterpret_cast<const int*>(f.seqused_k);
      // Clamped to the tensors' rows: the int32 arrays are trusted for values, not for safety.
      if (cu_q != nullptr) {
        x.q_row0 = q_row0(x.b);
        x.seqlen_q = q_len(x.b, x.q_row0);
      }
      if (cu_k != nullptr) {
        x.k_row0 = min(max(cu_k[x.b], 0), p.total_k);
        x.seqlen_k = min(max(cu_k[x.b + 1] - x.k_row0, 0), min(f.seqlen_k, p.total_k - x.k_row0));
      }
      if (used != nullptr) x.seqlen_k = min(x.seqlen_k, max(used[x.b], 0));
      if (cu_q != nullptr || cu_k != nullptr || used != nullptr) {
        const int shift = (x.seqlen_k - x.seqlen_q) - (f.seqlen_k - f.seqlen_q);
        x.causal_offset += shift;
        x.window_left += shift;
      }
    }
    // Keys any valid row of the tile sees: [n_lo, n_hi).
    const int last_row = min(x.m0 + f.rows_per_head, x.seqlen_q) - 1;
    int n_hi = x.seqlen_k;
    if (Traits::kCausal) n_hi = min(n_hi, last_row + x.causal_offset + 1);
    int n_lo = 0;
    if (Traits::kLocal) n_lo = max(0, x.m0 + x.window_left);
    const int b_lo = n_lo / Sm90::kBlockN;
    const int total = n_hi > n_lo ? (n_hi + Sm90::kBlockN - 1) / Sm90::kBlockN - b_lo : 0;
    x.n_block0 = b_lo;
    x.n_blocks = total;
    x.rot = 0;
    if constexpr (Sm90::kRotate) {
      // Spread over the head's query blocks (pairs, with clusters: both CTAs of a cluster stream
      // the same blocks).
      const int slots = max(1, f.num_m_blocks / Sm90::kCluster);
      if (total > 0) x.rot = (int)(((long long)(x.m_block / Sm90::kCluster) * total / slots) % total);
    }
    if (Traits::kInfer && f.num_splits > 1) {
      // Split s takes blocks [s * chunk, (s + 1) * chunk) of the tile's range (params.cuh).
      const int chunk = (total + f.num_splits - 1) / f.num_splits;
      const int begin = min(total, x.split * chunk);
      x.n_block0 = b_lo + begin;
      x.n_blocks = min(total, begin + chunk) - begin;
    }
    return x;
  }

  // A tile with no query row of its sequence (varlen: shorter sequences than the longest leave
  // query blocks empty). The producer skips them; consumers never see one.
  FC_DEVICE bool empty(const Tile& x) const { return Traits::kInfer && x.m0 >= x.seqlen_q; }
};

}  // namespace sm90
