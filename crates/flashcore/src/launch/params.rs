//! Kernel parameter structs, the Rust twins of kernels/common/params.cuh.

use super::tma::TensorMap;
use cudarc::driver::DeviceRepr;

/// Forward parameters, passed by value as a `__grid_constant__` kernel argument.
/// Layout must match `struct FwdParams` in kernels/common/params.cuh (both sides assert 376 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FwdParams {
    pub q: u64,
    pub k: u64,
    pub v: u64,
    pub o: u64,
    pub lse: u64,
    pub q_stride_b: i64,
    pub q_stride_s: i64,
    pub q_stride_h: i64,
    pub k_stride_b: i64,
    pub k_stride_s: i64,
    pub k_stride_h: i64,
    pub v_stride_b: i64,
    pub v_stride_s: i64,
    pub v_stride_h: i64,
    pub o_stride_b: i64,
    pub o_stride_s: i64,
    pub o_stride_h: i64,
    pub batch: i32,
    pub heads: i32,
    pub kv_heads: i32,
    pub seqlen_q: i32,
    pub seqlen_k: i32,
    pub head_dim: i32,
    pub causal_offset: i32,
    pub num_m_blocks: i32,
    pub scale_log2: f32,
    /// Hopper kernel: query rows of one head per tile (block_m, or less when GQA heads are packed).
    pub rows_per_head: i32,
    // ---- Inference paths (issue 8); see params.cuh for the exact semantics of each field. ----
    /// int32 [batch + 1] device arrays of packed (varlen) q/o and k/v rows; 0 = dense batches.
    pub cu_seqlens_q: u64,
    pub cu_seqlens_k: u64,
    /// int32 [batch]: keys in use per sequence (KV-cache lengths); 0 = all.
    pub seqused_k: u64,
    /// int32 [batch, block_table_stride_b]: paged K/V page indices; 0 = contiguous K/V.
    pub block_table: u64,
    pub block_table_stride_b: i64,
    /// LSE (b, h, i) at b * lse_stride_b + h * lse_stride_h + i (+ cu_seqlens_q[b] when varlen).
    pub lse_stride_b: i64,
    pub lse_stride_h: i64,
    /// Split-KV partials: fp32 O [splits][accum_split_rows][D] and LSE [splits][accum_split_rows].
    pub o_accum: u64,
    pub lse_accum: u64,
    pub accum_split_rows: i64,
    pub page_size: i32,
    /// 1 = no split (the kernel writes o and lse itself).
    pub num_splits: i32,
    /// Sliding window: key j visible to query i only if j >= i + window_offset_left (FC_LOCAL).
    pub window_offset_left: i32,
    /// Softcap: scores become tanh(s * softcap_pre), softcap_pre = scale / cap (FC_SOFTCAP).
    pub softcap_pre: f32,
    // ---- FP8 forward (issue 7); params.cuh documents the indexing. ----
    /// fp32 descale factors of q, k, v (true value = e4m3 value x descale); 0 outside the FP8 path.
    pub q_descale: u64,
    pub k_descale: u64,
    pub v_descale: u64,
    pub q_descale_stride_b: i64,
    pub q_descale_stride_h: i64,
    /// Per 128-row block of q (block quantization); 0 = one factor for all rows.
    pub q_descale_stride_blk: i64,
    pub k_descale_stride_b: i64,
    pub k_descale_stride_h: i64,
    pub k_descale_stride_blk: i64,
    pub v_descale_stride_b: i64,
    pub v_descale_stride_h: i64,
    /// Per 128-key block of v (block quantization); 0 = one factor for all keys.
    pub v_descale_stride_blk: i64,
    /// Attention sinks (inference paths): fp32 [heads] logits joining each row's softmax
    /// denominator with a zero value; 0 = none.
    pub sinks: u64,
}

const _: () = assert!(std::mem::size_of::<FwdParams>() == 376);
const _: () = assert!(std::mem::offset_of!(FwdParams, q_descale) == 272);
const _: () = assert!(std::mem::offset_of!(FwdParams, cu_seqlens_q) == 176);
const _: () = assert!(std::mem::offset_of!(FwdParams, page_size) == 256);
const _: () = assert!(std::mem::offset_of!(FwdParams, batch) == 136);
const _: () = assert!(std::mem::offset_of!(FwdParams, scale_log2) == 168);

// SAFETY: FwdParams is #[repr(C)], made only of plain integers and floats, with the exact layout the
// kernel declares (asserted above and by static_assert in params.cuh).
unsafe impl DeviceRepr for FwdParams {}

/// Hopper forward parameters: the common ones plus TMA maps of q, k, v.
/// Twin of `struct Sm90Params` in kernels/common/params.cuh (both assert 960 bytes).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sm90Params {
    pub base: FwdParams,
    /// Device address of a u32 that is zero when the launch starts: the persistent scheduler's
    /// next-tile counter (the launch resets it at its end).
    pub tile_counter: u64,
    /// Inference paths: rows of packed q/o and of k/v (pool rows when paged); the kernel clamps the
    /// int32 arrays' values to them (params.cuh).
    pub total_q: i32,
    pub total_k: i32,
    pub tma_q: TensorMap,
    pub tma_k: TensorMap,
    pub tma_v: TensorMap,
    /// O, box of 64 head-dim values by 64 rows (the TMA-store epilogue).
    pub tma_o: TensorMap,
}

const _: () = assert!(std::mem::size_of::<Sm90Params>() == 960);
const _: () = assert!(std::mem::offset_of!(Sm90Params, tile_counter) == 376);
const _: () = assert!(std::mem::offset_of!(Sm90Params, total_k) == 388);
const _: () = assert!(std::mem::offset_of!(Sm90Params, tma_q) == 448);

// SAFETY: #[repr(C)] plain data with the layout the kernel declares (asserted above and in params.cuh).
unsafe impl DeviceRepr for Sm90Params {}

/// Backward parameters, shared by the prep, main and post kernels (kernels/bwd/prep.cu,
/// kernels/sm80/bwd.cu, kernels/bwd/post.cu). Layout must match `struct BwdParams` in
/// kernels/common/params.cuh (both sides assert 376 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BwdParams {
    pub q: u64,
    pub k: u64,
    pub v: u64,
    pub o: u64,
    pub dout: u64,
    pub lse: u64,
    pub dq: u64,
    pub dk: u64,
    pub dv: u64,
    /// fp32 [B, H, Sq_pad, D]: dQ before the scale, summed over key blocks.
    pub dq_accum: u64,
    /// fp32 [B, H, Sq_pad]: LSE · log2(e), +inf where P must be 0.
    pub lse2: u64,
    /// fp32 [B, H, Sq_pad]: rowsum(dO ∘ O).
    pub dsum: u64,
    /// u32 [B, H, num_m_blocks]: the deterministic mode's per-query-block ordering counters.
    pub dq_sem: u64,
    pub q_stride_b: i64,
    pub q_stride_s: i64,
    pub q_stride_h: i64,
    pub k_stride_b: i64,
    pub k_stride_s: i64,
    pub k_stride_h: i64,
    pub v_stride_b: i64,
    pub v_stride_s: i64,
    pub v_stride_h: i64,
    pub o_stride_b: i64,
    pub o_stride_s: i64,
    pub o_stride_h: i64,
    pub do_stride_b: i64,
    pub do_stride_s: i64,
    pub do_stride_h: i64,
    pub dq_stride_b: i64,
    pub dq_stride_s: i64,
    pub dq_stride_h: i64,
    pub dk_stride_b: i64,
    pub dk_stride_s: i64,
    pub dk_stride_h: i64,
    pub dv_stride_b: i64,
    pub dv_stride_s: i64,
    pub dv_stride_h: i64,
    pub batch: i32,
    pub heads: i32,
    pub kv_heads: i32,
    pub seqlen_q: i32,
    pub seqlen_k: i32,
    pub head_dim: i32,
    pub causal_offset: i32,
    pub num_m_blocks: i32,
    pub num_n_blocks: i32,
    pub scale_log2: f32,
    pub scale: f32,
    pub deterministic: i32,
    /// Hopper backward: CTAs per (key block, kv head, batch), each over group / kv_splits query
    /// heads; above 1, fp32 partial dK (scaled) and dV go to `dkv_accum` and the post kernel sums them.
    pub kv_splits: i32,
    /// Sliding window: key j visible to query i only if j >= i + window_offset_left (FC_LOCAL).
    pub window_offset_left: i32,
    /// fp32 [2][kv_splits][B, Hkv, Sk_pad, D] (dK then dV) when kv_splits > 1, else 0.
    pub dkv_accum: u64,
    /// fp32 [B, H, Sq]: the loss gradient of the forward's LSE (the prep kernel subtracts it from
    /// rowsum(dO ∘ O)), or 0 for none.
    pub dlse: u64,
    /// FC_SOFTCAP: scale / cap (tanh's argument; `scale_log2` is then cap · log2 e), as in FwdParams.
    pub softcap_pre: f32,
    /// Hopper backward, dQ converted in the main kernel (kernels/sm90/bwd_convert.cuh): the CTAs of
    /// grid row r (kv head, batch) convert grid row r - convert_lag's dQ once that row's CTAs are
    /// done (counted in `dq_sem`, u32 per grid row); the post kernel converts rows from
    /// `convert_rows` on. 0 and 0: the post kernel converts every row.
    pub convert_lag: i32,
    pub convert_rows: i32,
    /// Hopper backward, dQ accumulator zeroed in the main kernel (kernels/sm90/bwd_zero.cuh): the
    /// CTAs of grid row r zero row r + zero_lag's accumulator, counted in u32s after the
    /// deterministic counters of `dq_sem`; the prep kernel zeroes the rows before zero_lag. 0: the
    /// prep kernel zeroes every row.
    pub zero_lag: i32,
}

const _: () = assert!(std::mem::size_of::<BwdParams>() == 384);
const _: () = assert!(std::mem::offset_of!(BwdParams, q_stride_b) == 104);
const _: () = assert!(std::mem::offset_of!(BwdParams, batch) == 296);
const _: () = assert!(std::mem::offset_of!(BwdParams, scale_log2) == 332);
const _: () = assert!(std::mem::offset_of!(BwdParams, deterministic) == 340);
const _: () = assert!(std::mem::offset_of!(BwdParams, dkv_accum) == 352);
const _: () = assert!(std::mem::offset_of!(BwdParams, softcap_pre) == 368);
const _: () = assert!(std::mem::offset_of!(BwdParams, convert_lag) == 372);

// SAFETY: BwdParams is #[repr(C)], made only of plain integers and floats, with the exact layout the
// kernels declare (asserted above and by static_assert in params.cuh).
unsafe impl DeviceRepr for BwdParams {}

/// Hopper backward parameters: the common backward ones plus TMA maps of q and dout (boxes of 64
/// head-dim values by block_m rows) and k, v (64 by block_n rows). Twin of `struct Sm90BwdParams`
/// in kernels/common/params.cuh (both assert 1152 bytes; `base` is padded to 384 bytes so the maps
/// stay 64-byte aligned).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sm90BwdParams {
    pub base: BwdParams,
    pub tma_q: TensorMap,
    pub tma_k: TensorMap,
    pub tma_v: TensorMap,
    pub tma_do: TensorMap,
    /// dk and dv, boxes of 64 head-dim values by 64 key rows (one consumer warpgroup's keys): the
    /// epilogue's TMA stores.
    pub tma_dk: TensorMap,
    pub tma_dv: TensorMap,
}

const _: () = assert!(std::mem::size_of::<Sm90BwdParams>() == 1152);
const _: () = assert!(std::mem::offset_of!(Sm90BwdParams, tma_q) == 384);
const _: () = assert!(std::mem::offset_of!(Sm90BwdParams, tma_do) == 768);

// SAFETY: #[repr(C)] plain data with the layout the kernel declares (asserted above and in params.cuh).
unsafe impl DeviceRepr for Sm90BwdParams {}

/// Combine of split-KV partials and merge of two outputs (kernels/attn/combine.cu). Twin of
/// `struct CombineParams` in kernels/common/params.cuh (both assert 184 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CombineParams {
    pub o: u64,
    pub lse: u64,
    /// Split: [o_accum, 0] / [lse_accum, 0]. Merge: the two outputs and their LSEs.
    pub in_o: [u64; 2],
    pub in_lse: [u64; 2],
    pub o_stride_b: i64,
    pub o_stride_s: i64,
    pub o_stride_h: i64,
    pub in_stride_b: [i64; 2],
    pub in_stride_s: [i64; 2],
    pub in_stride_h: [i64; 2],
    pub lse_stride_b: i64,
    pub lse_stride_h: i64,
    pub accum_split_rows: i64,
    pub cu_seqlens_q: u64,
    pub batch: i32,
    pub heads: i32,
    pub seqlen_q: i32,
    pub total_q: i32,
    pub num_splits: i32,
    pub reserved: i32,
    /// Split combine: the forward's attention sinks (fp32 [heads]), 0 = none.
    pub sinks: u64,
}

const _: () = assert!(std::mem::size_of::<CombineParams>() == 184);
const _: () = assert!(std::mem::offset_of!(CombineParams, batch) == 152);

// SAFETY: #[repr(C)] plain integers with the layout the kernel declares (asserted above and in params.cuh).
unsafe impl DeviceRepr for CombineParams {}

/// FP8 V transpose parameters (kernels/sm90/fp8_vt.cu). Twin of `struct VtParams` in
/// kernels/common/params.cuh (both assert 64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VtParams {
    pub v: u64,
    pub vt: u64,
    pub v_stride_b: i64,
    pub v_stride_s: i64,
    pub v_stride_h: i64,
    pub batch: i32,
    pub kv_heads: i32,
    pub seqlen_k: i32,
    pub seqlen_pad: i32,
    pub head_dim: i32,
    pub reserved: i32,
}

const _: () = assert!(std::mem::size_of::<VtParams>() == 64);

// SAFETY: #[repr(C)] plain integers with the layout the kernel declares (asserted above and in params.cuh).
unsafe impl DeviceRepr for VtParams {}
