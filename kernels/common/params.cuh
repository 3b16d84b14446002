// C twin of crates/flashcore/src/launch/params.rs. Field order, types and the size assert must match;
// both sides assert each struct's size so a drift fails at compile time on each side.
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
  // Hopper kernel: query rows of one head in a tile. block_m unless the query heads of a GQA
  // group are packed into one tile (short Sq): then block_m / rows_per_head heads share the tile
  // and its K/V loads. Unused by the sm80 kernel.
  i32 rows_per_head;

  // ---- Inference paths (issue 8). A dense call leaves every pointer 0, lse strides [H*Sq, Sq],
  // num_splits 1, page_size 0. ----
  // Varlen: q and o (cu_seqlens_q) and k and v (cu_seqlens_k) are packed [1, total, H, D]; sequence
  // b's rows start at row cu[b] (int32 [batch + 1] in device memory; batch strides unused), and
  // seqlen_q / seqlen_k hold the longest sequence's length (the host cannot read the device arrays).
  u64 cu_seqlens_q, cu_seqlens_k;
  // int32 [batch]: keys in use per sequence (KV-cache lengths). When set it is sequence b's key count
  // (at most seqlen_k, or its cu_seqlens_k span), and the bottom-right causal/window diagonal follows it.
  // Per-sequence diagonal (any of cu_seqlens_q, cu_seqlens_k, seqused_k set): causal_offset and
  // window_offset_left are computed by the host from the longest lengths (seqlen_q, seqlen_k); for
  // sequence b with Sq_b queries and Sk_b keys the kernel adds (Sk_b - Sq_b) - (seqlen_k - seqlen_q)
  // to both. The host rejects the top-left causal mask in that mode, so the shift always applies.
  u64 seqused_k;
  // Paged K/V: k and v point at page pools [num_pages, page_size, Hkv, D] (k_stride_b / v_stride_b =
  // the page stride, k_stride_s the token stride); block_table int32 [batch, block_table_stride_b]
  // maps sequence b's page i (keys i*page_size ..) to a pool page.
  u64 block_table;
  i64 block_table_stride_b;
  // LSE element (b, h, i) lives at lse[b * lse_stride_b + h * lse_stride_h + i] (dense) or
  // lse[h * lse_stride_h + cu_seqlens_q[b] + i] (varlen: [H, total_q], lse_stride_b unused).
  i64 lse_stride_b, lse_stride_h;
  // Split-KV (num_splits > 1): split s of a tile covers key blocks [s * chunk, (s + 1) * chunk) of
  // the tile's range (chunk = ceil(blocks / num_splits)) and writes its normalised O in fp32 and its
  // LSE (natural log, -inf when the split saw no key) to o_accum / lse_accum instead of o / lse.
  // Partial row r (r = the LSE index formula above, with lse strides) of split s lives at
  // o_accum[(s * accum_split_rows + r) * head_dim ..] and lse_accum[s * accum_split_rows + r];
  // the combine kernel merges the splits into o and lse.
  u64 o_accum, lse_accum;
  i64 accum_split_rows;
  i32 page_size, num_splits;
  // Sliding window (FC_LOCAL): key j is visible to query i only if j >= i + window_offset_left. The
  // window's right edge is the causal bound (FC_CAUSAL: j <= i + causal_offset).
  i32 window_offset_left;
  // Logit softcap (FC_SOFTCAP): a raw score s becomes tanh(s * softcap_pre) with softcap_pre =
  // scale / cap, and scale_log2 is then cap * log2(e).
  float softcap_pre;

  // ---- FP8 forward (issue 7, FC_FP8): q, k, v are e4m3 and the true values are x * descale. ----
  // fp32 descale factors: q's of (b, h, 128-row block i) at q_descale[b * q_descale_stride_b + h *
  // q_descale_stride_h + i * q_descale_stride_blk], k's likewise per kv head and 128-key block, v's
  // per (b, kv head) and 128-key block likewise. Zero strides broadcast: per tensor all strides are
  // 0, per head the block stride is 0. A block stride of k that is not 0 makes the kernel rescale
  // each score block; one of v, the O accumulator between key blocks (sm90/consumer.cuh).
  u64 q_descale, k_descale, v_descale;
  i64 q_descale_stride_b, q_descale_stride_h, q_descale_stride_blk;
  i64 k_descale_stride_b, k_descale_stride_h, k_descale_stride_blk;
  i64 v_descale_stride_b, v_descale_stride_h, v_descale_stride_blk;

  // ---- Attention sinks (inference paths, FC_INFER): fp32 [heads], one logit per query head that
  // joins every row's softmax denominator with a zero value (the row's weights then sum to less
  // than 1), and the LSE includes it; 0 = none. With splits the combine kernel adds it, once. ----
  u64 sinks;
};
static_assert(sizeof(FwdParams) == 376, "FwdParams layout drifted from launch/params.rs");

// Hopper forward: the common params plus TMA descriptors of q, k, v (boxes of 64 head-dim values
// by block_m query rows or block_n key rows) and o. Twin of launch/params.rs `Sm90Params`.
struct Sm90Params {
  FwdParams base;
  // A u32 in device memory, zero when the launch starts (the previous launch that used it reset it
  // at its end, producer.cuh): the next tile to hand out (scheduler.cuh).
  u64 tile_counter;
  // FC_INFER: rows of the packed q/o (varlen; else seqlen_q) and of k/v (varlen: total keys; paged:
  // num_pages * page_size; else seqlen_k). The kernel clamps cu_seqlens and page indices to them, so
  // garbage in the (trusted) int32 arrays cannot make it read or write outside the tensors. Sits in
  // the padding before the 64-byte aligned maps.
  i32 total_q, total_k;
  TmaDesc tma_q, tma_k, tma_v;
  // O in q's layout, box of 64 head-dim values by 64 rows (one consumer warpgroup's tile); used by
  // the TMA-store epilogue.
  TmaDesc tma_o;
};
static_assert(sizeof(Sm90Params) == 960, "Sm90Params layout drifted from launch/params.rs");

// Combine / merge (attn/combine.cu). Twin of launch/params.rs `CombineParams` (both assert 184 bytes).
// Split combine: in_o[0] / in_lse[0] are FwdParams o_accum / lse_accum (fp32, split-major); row r of
// (b, h, i) is b * lse_stride_b + h * lse_stride_h + i (varlen: h * lse_stride_h + cu_seqlens_q[b] + i).
// Merge (FC_COMBINE_MERGE): in_o[0..1] are two 16-bit outputs with their own strides and in_lse[0..1]
// their LSE at the same row index as the output LSE.
struct CombineParams {
  u64 o, lse;  // output (q's dtype) and its LSE (fp32, 0 = not wanted)
  u64 in_o[2], in_lse[2];
  i64 o_stride_b, o_stride_s, o_stride_h;
  i64 in_stride_b[2], in_stride_s[2], in_stride_h[2];
  i64 lse_stride_b, lse_stride_h;
  i64 accum_split_rows;
  u64 cu_seqlens_q;
  // seqlen_q: the longest sequence (varlen) or every sequence's length; total_q: rows of the packed
  // output (varlen), which cu_seqlens_q is clamped to.
  i32 batch, heads, seqlen_q, total_q, num_splits, reserved;
  // Split combine: FwdParams::sinks (fp32 [heads], 0 = none), added to every row's sum of parts.
  u64 sinks;
};
static_assert(sizeof(CombineParams) == 184, "CombineParams layout drifted from launch/params.rs");

// Backward (bwd/prep.cu, sm80/bwd.cu, bwd/post.cu). Twin of launch/params.rs `BwdParams` (both
// assert 376 bytes). Scratch buffers (fp32, from the host's stream-ordered allocation) are laid out
// per (batch, head) over seqlen_q_pad = num_m_blocks * block_m rows, so the main kernel loads LSE
// and D of a whole query block without bounds checks.
struct BwdParams {
  // Inputs: q, k, v, o (the forward's output), dout, lse (fp32 [B, H, Sq], natural log).
  u64 q, k, v, o, dout, lse;
  // Outputs, in the dtype of q.
  u64 dq, dk, dv;
  // Scratch: dq_accum fp32 [B, H, Sq_pad, D]; lse2 fp32 [B, H, Sq_pad] (LSE * log2 e, +inf where P
  // must be 0); dsum fp32 [B, H, Sq_pad] (rowsum(dO * O)); dq_sem u32 [B, H, num_m_blocks].
  u64 dq_accum, lse2, dsum, dq_sem;
  // Element strides (batch, seq, head); head dim has stride 1.
  i64 q_stride_b, q_stride_s, q_stride_h;
  i64 k_stride_b, k_stride_s, k_stride_h;
  i64 v_stride_b, v_stride_s, v_stride_h;
  i64 o_stride_b, o_stride_s, o_stride_h;
  i64 do_stride_b, do_stride_s, do_stride_h;
  i64 dq_stride_b, dq_stride_s, dq_stride_h;
  i64 dk_stride_b, dk_stride_s, dk_stride_h;
  i64 dv_stride_b, dv_stride_s, dv_stride_h;
  i32 batch, heads, kv_heads, seqlen_q, seqlen_k, head_dim;
  // Key j is visible to query i only if j <= i + causal_offset (FC_CAUSAL: the causal mask or the
  // window's right edge) and j >= i + window_offset_left (FC_LOCAL), as in FwdParams.
  i32 causal_offset;
  i32 num_m_blocks, num_n_blocks;
  // softmax_scale * log2(e) (recomputing P) and softmax_scale (dQ and dK).
  float scale_log2, scale;
  // 1: dQ contributions are added in key-block order (bitwise reproducible), 0: as they come.
  i32 deterministic;
  // Hopper backward only: CTAs per (key block, kv head, batch), each taking group / kv_splits query
  // heads. Above 1 the main kernel writes fp32 partial dK (scaled) and dV to dkv_accum
  // [2][kv_splits][B, Hkv, num_n_blocks * block_n, D] and bwd/post.cu sums them in split order.
  i32 kv_splits;
  i32 window_offset_left;
  u64 dkv_accum;
  // fp32 [B, H, Sq], the loss gradient of the forward's LSE, or 0: D = rowsum(dO ∘ O) − dlse
  // (bwd/prep.cu), since ∂LSE/∂s = P.
  u64 dlse;
  // FC_SOFTCAP: scale / cap, what tanh's argument is (scale_log2 is then cap · log2 e), as FwdParams.
  float softcap_pre;
  // Hopper backward, dQ converted in the main kernel (sm90/bwd_convert.cuh; 0 and 0: bwd/post.cu
  // converts every row): the CTAs of grid row r (kv head, batch) convert grid row r - convert_lag's
  // dQ once its CTAs are done, which dq_sem counts then (u32 per grid row, zeroed by bwd/prep.cu);
  // bwd/post.cu converts the rows from convert_rows on.
  i32 convert_lag;
  i32 convert_rows;
  // Hopper backward, dQ accumulator zeroed in the main kernel (sm90/bwd_zero.cuh; 0: bwd/prep.cu
  // zeroes all of it): the CTAs of grid row r zero grid row r + zero_lag's accumulator and count
  // it (u32 per grid row past the deterministic counters, bwd_zero_counters); bwd/prep.cu zeroes
  // the rows before zero_lag.
  i32 zero_lag;
};
static_assert(sizeof(BwdParams) == 384, "BwdParams layout drifted from launch/params.rs");

// BwdParams::zero_lag's per-grid-row counters: past the deterministic mode's turn counters
// ([B, H, num_m_blocks] u32) in dq_sem.
FC_DEVICE u32* bwd_zero_counters(const BwdParams& p) {
  return reinterpret_cast<u32*>(p.dq_sem) + (i64)p.batch * p.heads * p.num_m_blocks;
}

// Hopper backward (sm90/bwd.cu): the common backward params plus TMA descriptors of q and dout
// (boxes of 64 head-dim values by block_m query rows) and k, v (64 by block_n key rows). Twin of
// launch/params.rs `Sm90BwdParams` (both assert 1152 bytes: base padded to 384 for the 64-byte
// aligned maps).
struct Sm90BwdParams {
  BwdParams base;
  TmaDesc tma_q, tma_k, tma_v, tma_do;
  // dk and dv (boxes of 64 head-dim values by 64 key rows: one consumer warpgroup's keys), for the
  // epilogue's TMA stores when the CTA owns its key block's whole group (kv_splits == 1).
  TmaDesc tma_dk, tma_dv;
};
static_assert(sizeof(Sm90BwdParams) == 1152, "Sm90BwdParams layout drifted from launch/params.rs");

// FP8 V transpose (sm90/fp8_vt.cu): v e4m3 [B, Sk, Hkv, D] (element strides, head dim stride 1) to
// vt [B, Hkv, D, seqlen_pad] contiguous, keys permuted within groups of 32 (see fp8_vt.cu) and zero
// past seqlen_k. Twin of launch/params.rs `VtParams` (both assert 64 bytes).
struct VtParams {
  u64 v, vt;
  i64 v_stride_b, v_stride_s, v_stride_h;
  i32 batch, kv_heads, seqlen_k, seqlen_pad, head_dim, reserved;
};
static_assert(sizeof(VtParams) == 64, "VtParams layout drifted from launch/params.rs");
