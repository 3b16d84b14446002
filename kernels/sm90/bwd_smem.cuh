// Shared-memory plan of the Hopper backward: tile addresses and mbarriers, derived from Sm90Bwd.
// K | V | Q[2] | dO[2] | dSᵀ[2] | dQ[kDqBufs] | lse2[2] | dsum[2] | mbarriers; every tile 1024-byte
// aligned (dQ: no buffer unless Sm90Bwd::kDqSmem).
#pragma once
#include "../common/ptx/cp_async.cuh"
#include "../common/ptx/tma.cuh"
#include "bwd_config.cuh"

struct Sm90BwdSmem {
  unsigned char* raw;  // generic pointer of `base`, for the fp32 vectors the consumers read
  u32 base;

  FC_DEVICE explicit Sm90BwdSmem(unsigned char* smem) {
    // TMA with the 128-byte swizzle and wgmma descriptors (base offset 0) need 1024-byte aligned tiles.
    const u32 a = ptx::smem_addr(smem);
    base = (a + 1023u) & ~1023u;
    raw = smem + (base - a);
  }
  static constexpr int kQ = 2 * Sm90Bwd::kKVBytes;
  static constexpr int kDo = kQ + Sm90Bwd::kStages * Sm90Bwd::kQBytes;
  static constexpr int kDs = kDo + Sm90Bwd::kStages * Sm90Bwd::kQBytes;
  static constexpr int kDq = kDs + 2 * Sm90Bwd::kDsBytes;
  static constexpr int kLse = kDq + Sm90Bwd::kDqBufs * Sm90Bwd::kDqBytes;
  static constexpr int kDsum = kLse + Sm90Bwd::kStages * Sm90Bwd::kVecBytes;
  static constexpr int kBars = Sm90Bwd::kSmemTiles;
  static_assert(kDsum + Sm90Bwd::kStages * Sm90Bwd::kVecBytes == kBars, "smem plan and kSmemTiles disagree");

  FC_DEVICE u32 k() const { return base; }
  FC_DEVICE u32 v() const { return base + Sm90Bwd::kKVBytes; }
  FC_DEVICE u32 q(int s) const { return base + kQ + s * Sm90Bwd::kQBytes; }
  FC_DEVICE u32 dout(int s) const { return base + kDo + s * Sm90Bwd::kQBytes; }
  FC_DEVICE u32 ds(int buf) const { return base + kDs + buf * Sm90Bwd::kDsBytes; }
  FC_DEVICE u32 dq(int buf) const { return base + kDq + buf * Sm90Bwd::kDqBytes; }
  FC_DEVICE u32 lse2(int s) const { return base + kLse + s * Sm90Bwd::kVecBytes; }
  FC_DEVICE u32 dsum(int s) const { return base + kDsum + s * Sm90Bwd::kVecBytes; }
  // The same vectors as generic pointers (ld.shared through the generic window).
  FC_DEVICE const float* lse2_ptr(int s) const { return reinterpret_cast<const float*>(raw + (lse2(s) - base)); }
  FC_DEVICE const float* dsum_ptr(int s) const { return reinterpret_cast<const float*>(raw + (dsum(s) - base)); }

  // kv_full: K and V landed (once). q_full[s]: Q, dO, lse2 and dsum of the step in stage s landed.
  // q_empty[s]: every consumer thread is done with stage s (its GEMMs completed, vectors read).
  FC_DEVICE u32 kv_full() const { return base + kBars; }
  FC_DEVICE u32 q_full(int s) const { return base + kBars + 8 * (1 + s); }
  FC_DEVICE u32 q_empty(int s) const { return base + kBars + 8 * (1 + Sm90Bwd::kStages + s); }
  // The CTA's grid row and key block (Work::grid_row, Work::n_block) and the units of a row that
  // sm90/bwd_convert.cuh walks (query heads x blocks), written by thread 0 before the first
  // barrier: the 24-register producer warps and the consumers' last step read them here rather
  // than keep them live from the kernel's start (they spilled).
  FC_DEVICE u32 cta_info(int i) const { return base + kBars + 8 * (1 + 2 * Sm90Bwd::kStages) + 4 * i; }
};
