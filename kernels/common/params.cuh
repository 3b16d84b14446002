// C twin of crates/flashcore/src/launch/params.rs. Field order, types and the size assert must match;
// both sides assert sizeof == 176 so a drift fails at compile time on each side.
#pragma once
#include "ptx/tma.cuh"
#include "types.cuh"

struct FwdParams {
  // Device pointers. lse may be 0 (not requested).
  u64 q, k, v, o, lse;
  // Element strides (64-bit so tensors over 2^31 elements index correctly). Head dim has stride 1.
  i64 q_stride_b, q_stride_s, q_stride_h;
  i64 k_stride_b, k_stride_s, k_stride_h;
  i64 v_stride_b, v_stride_s, v_stride_h;
  i64 o_stride_b, o_stride_s, o_stride_h;
  i32 batch, heads, kv_heads, seqlen_q, seqlen_k, head_dim;
  // Key j is visible to query i iff j <= i + causal_offset (0: top-left, Sk - Sq: bottom-right).
  i32 causal_offset;
  i32 num_m_blocks;
  // softmax_scale * log2(e), folded on the host so the kernel does one FFMA before ex2.
  float scale_log2;
  i32 reserved;
};
static_assert(sizeof(FwdParams) == 176, "FwdParams layout drifted from launch/params.rs");

// Hopper forward: the common params plus TMA descriptors of q, k, v (boxes of 64 head-dim values
// by block_m query rows or block_n key rows) and o. Twin of launch/params.rs `Sm90Params`.
struct Sm90Params {
  FwdParams base;
  // A u32 in device memory, zeroed before the launch: the next tile to hand out (scheduler.cuh).
  u64 tile_counter;
  TmaDesc tma_q, tma_k, tma_v;
  // O in q's layout, box of 64 head-dim values by 64 rows (one consumer warpgroup's tile); used by
  // the TMA-store epilogue.
  TmaDesc tma_o;
};
static_assert(sizeof(Sm90Params) == 704, "Sm90Params layout drifted from launch/params.rs");
