// Persistent tile scheduler of the Hopper forward: the grid is at most one CTA per SM and each CTA's
// producer takes the next tile from a global atomic counter, so CTAs stay busy until the work runs
// out whatever the tiles cost (causal tiles differ in work by up to S/block_n times). A tile is
// (query block, head, batch[, split]) with the query block fastest, so the tiles in flight at one
// moment share a head's K/V in L2; with a causal mask the tiles that see the most keys go first,
// across a section of heads whose K/V fit in L2 together (Scheduler::section). Measured on the H100
// (bench/NOTES.md): a static round-robin assignment lost 30% on long causal rows to imbalance, and
// head by head (each head's query blocks last-first) cost 1-8% on causal rows of 1K-8K keys.
#pragma once
#include "../common/params.cuh"
#include "../common/sections.cuh"
#include "config.cuh"

// L2 budget (MiB) of a section of causal tiles (Scheduler::section); 0: head by head.
#ifndef FC_SM90_SECTION_MIB
#define FC_SM90_SECTION_MIB 16
#endif

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

  // Causal tiles differ in length (a head's last query block sees all its keys, the first one
  // block), and a dynamic scheduler balances them only if the long ones go first. Head by head
  // (query blocks of one head longest first, then the next head) the last heads' long tiles are
  // handed out near the end and leave most CTAs idle while a few finish them: a simulation of the
  // counter put that tail at 6-7% of the causal rows at 1K-8K keys (B*S = 16K tokens). So the
  // heads (with batch, and splits) go in sections whose K/V together fit FC_SM90_SECTION_MIB of
  // L2, longest first across the section: the CTAs in flight still share a few heads' K/V, and
  // only the last section's tiles make the tail. Returns the section's size in head groups (1:
  // head by head, as before). On the H100 (bench/NOTES.md, session 11), 16 MiB against head by
  // head: causal d128 S2K-S8K +3-4.5%, d256 S4K +8%, GQA 32/8 S8K +2.7%, d64 S1K-S16K +1-2.5%;
  // 32 MiB lost to L2 misses (d128 S1K -9%), 8 MiB gave d256 half the gain.
  FC_DEVICE int section() const {
    if constexpr (FC_SM90_SECTION_MIB == 0) return 1;
    const long long kv_bytes = 2ll * f.seqlen_k * f.head_dim * (Sm90::kFp8 ? 1 : 2);  // one kv head
    const int groups_per_kv = max(1, head_groups / f.kv_heads);
    // With under 8 query blocks per head the longest tile is short and so is the tail, while a
    // section spreads each head's few tiles apart in time, so they no longer share its K/V in L2:
    // S512 causal lost 1.5-5.6% with sections of 8 to 16 MiB.
    if (f.num_m_blocks < 8) return 1;
    return (int)max(1ll, (long long)FC_SM90_SECTION_MIB * (1 << 20) * groups_per_kv / max(1ll, kv_bytes));
  }

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
    } else if constexpr (Traits::kCausal) {
      // Longest first across a section of heads (see section()), in units of kCluster query
      // blocks (a cluster's pair stays two adjacent blocks of one head).
      constexpr int U = Sm90::kCluster;
      const int mu = f.num_m_blocks / U;  // the host asks for a multiple of U query blocks
      const int hbs = num_tiles / f.num_m_blocks;
      const int tu = t / U;
      int hb, mi_u;
      section_order(tu, mu, hbs, min(section(), hbs), hb, mi_u);
      x.m_block = f.num_m_blocks - 1 - (mi_u * U + (t - tu * U));
      x.h = (hb % head_groups) * (Sm90::kBlockM / f.rows_per_head);
      const int bs = hb / head_groups;
      x.b = Traits::kInfer ? bs % f.batch : bs;
      x.split = Traits::kInfer ? bs / f.batch : 0;
    } else {
      const int mi = t % f.num_m_blocks;
      const int hb = t / f.num_m_blocks;
      x.m_block = mi;
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
