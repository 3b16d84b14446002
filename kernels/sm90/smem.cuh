// Shared-memory plan of the Hopper forward: tile addresses and mbarriers, derived from Sm90.
#pragma once
#include "../common/ptx/cp_async.cuh"
#include "../common/ptx/tma.cuh"
#include "config.cuh"
#include "scheduler.cuh"

// What the producer publishes per Q slot with that slot's q_full: the tile index (-1: no tile
// left), the K/V blocks loaded before it, the blocks the tile streams (clusters: its pair's longer
// tile), and the tile as the scheduler decoded it. The consumers read the tile rather than decode
// the index again, which put the decode's integer divisions (and the causal sections' 64-bit one)
// on their way from one tile to the next (bench/NOTES.md, session 17).
struct alignas(16) PublishedTile {
  int t, it0, n_stream, pad;
  sm90::Tile x;
};

struct Sm90Smem {
  u32 q0;       // Q slot s at q0 + s*kQBytes: [d block][block_m rows][128 B]
  u32 kv;       // stage s: K at kv + s*kKVBytes, V right after (kKBytes later)
  u32 ones;     // 16-bit kSumMma: block_n x 64 ones, the columns past P·V's head dim
  u32 o;        // TMA-store epilogue: consumer warpgroup w stages its output at o + w*kOBytesPerWg
  u32 p;        // FP8 kPSmem: consumer warpgroup w's P tile at p + w*kPBytesPerWg: [key block][64 rows][128 B]
  u32 bars;     // q_full[Q], q_empty[Q], then k_full[S], v_full[S], k_empty[S], v_empty[S],
                // then (clusters) pair_full[Q], pair_empty[Q], then (kVtSmem) vs_full[VS], vs_empty[VS]
  // Per Q slot: the tile the producer took (PublishedTile), published by that slot's q_full.
  PublishedTile* tile;
  // Clusters: shared-memory address of the per-Q-slot tile-pair tickets (after the published tiles),
  // which the leader CTA's producer writes into the peer's copy (pair_full publishes them).
  u32 ticket;

  FC_DEVICE explicit Sm90Smem(unsigned char* raw) {
    // TMA with the 128-byte swizzle and wgmma descriptors (base offset 0) need 1024-byte aligned tiles.
    const u32 base = (ptx::smem_addr(raw) + 1023u) & ~1023u;
    q0 = base;
    kv = base + Sm90::kQStages * Sm90::kQBytes;
    ones = kv + Sm90::kStages * Sm90::kKVBytes;
    o = ones + Sm90::kOnesBytes;
    p = o + Sm90::kOBytes;
    bars = base + Sm90::kSmemTiles;
    tile = reinterpret_cast<PublishedTile*>(raw + (bars - ptx::smem_addr(raw)) + kTileOffset);
    ticket = bars + kTileOffset + (u32)sizeof(PublishedTile) * Sm90::kQStages;
  }
  static constexpr int kFirstPair = 2 * Sm90::kQStages + 4 * Sm90::kStages;  // mbarrier index of pair_full[0]
  static constexpr int kFirstKV = 2 * Sm90::kQStages;  // mbarrier index of k_full[0]
  static constexpr int kFirstVs = kFirstPair + 2 * Sm90::kQStages;  // mbarrier index of vs_full[0]
  // The published tiles after the mbarriers, 16-byte aligned (the tiles' end is 1024-aligned).
  static constexpr int kTileOffset = (8 * (kFirstVs + 2 * Sm90::kVsStages) + 15) / 16 * 16;
  static_assert(Sm90::kSmemTiles % 16 == 0, "the mbarriers and published tiles need 16-byte alignment");
  static_assert(1023 + kTileOffset + (int)sizeof(PublishedTile) * Sm90::kQStages + 4 * Sm90::kQStages + 4 <=
                    Sm90::kSmemBytes - Sm90::kSmemTiles,
                "the mbarriers, published tiles and pair tickets exceed the shared memory reserved past the tiles");
  FC_DEVICE u32 q(int slot) const { return q0 + slot * Sm90::kQBytes; }
  FC_DEVICE u32 k(int s) const { return kv + s * Sm90::kKVBytes; }
  FC_DEVICE u32 v(int s) const { return k(s) + Sm90::kKBytes; }
  // FP8 kSumMma: the 8 rows of ones after stage s's transposed V.
  FC_DEVICE u32 ones_rows(int s) const { return v(s) + Sm90::kVLoadBytes; }
  FC_DEVICE u32 q_full(int slot) const { return bars + 8 * slot; }
  // The consumers release a Q slot once every GEMM of its tile has completed (fwd.cu).
  FC_DEVICE u32 q_empty(int slot) const { return bars + 8 * (Sm90::kQStages + slot); }
  FC_DEVICE u32 k_full(int s) const { return bars + 8 * (kFirstKV + s); }
  FC_DEVICE u32 v_full(int s) const { return bars + 8 * (kFirstKV + Sm90::kStages + s); }
  // K and V stages are released separately: K as soon as Q·Kᵀ has read it, V after P·V.
  FC_DEVICE u32 k_empty(int s) const { return bars + 8 * (kFirstKV + 2 * Sm90::kStages + s); }
  FC_DEVICE u32 v_empty(int s) const { return bars + 8 * (kFirstKV + 3 * Sm90::kStages + s); }
  FC_DEVICE PublishedTile* tile_of(int slot) const { return tile + slot; }
  // Clusters (producer.cuh): the leader's producer writes slot's pair ticket into the peer and
  // arrives on the peer's pair_full; the peer's producer reads it and arrives on the leader's
  // pair_empty, after which the leader may write that slot again.
  FC_DEVICE u32 pair_full(int slot) const { return bars + 8 * (kFirstPair + slot); }
  FC_DEVICE u32 pair_empty(int slot) const { return bars + 8 * (kFirstPair + Sm90::kQStages + slot); }
  FC_DEVICE u32 pair_ticket(int slot) const { return ticket + 4 * slot; }
  // FP8 kVtSmem: the producer's TMA fills V staging slot i (vs_full, with its byte count); the
  // transposer warps release it (vs_empty, one arrival per warp) once they have read it.
  // The staging slots are the last tiles, right before the mbarriers (derived from `bars` rather
  // than held in a field of their own).
  FC_DEVICE u32 vs_slot(int i) const { return bars - Sm90::kVsBytes + i * Sm90::kKBytes; }
  FC_DEVICE u32 vs_full(int i) const { return bars + 8 * (kFirstVs + i); }
  FC_DEVICE u32 vs_empty(int i) const { return bars + 8 * (kFirstVs + Sm90::kVsStages + i); }
  // FP8 kVtSmem: nonzero once the producer has no block left (after the pair tickets).
  FC_DEVICE u32 vs_stop() const { return ticket + 4 * Sm90::kQStages; }
};
