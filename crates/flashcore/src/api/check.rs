//! Every validation rule of the public API. Each failure names the argument it is about.

use super::args::{supported_page_size, AttnOptions, BwdOptions, KvSpec, Mask, Problem, TensorDesc};
use crate::error::{Error, Result};
use crate::plan::split::MAX_SPLITS;

/// Largest sequence length / batch / heads we accept; beyond this the grid or i32 indices overflow.
pub const MAX_SEQLEN: usize = i32::MAX as usize / 2;
pub const MAX_GRID_YZ: usize = 65_535;

fn check_desc(arg: &'static str, t: &TensorDesc) -> Result<()> {
    if t.shape[3] > 1 && t.strides[3] != 1 {
        return Err(Error::arg(arg, format!("head dim must have stride 1, got stride {}", t.strides[3])));
    }
    for (i, s) in t.strides.iter().enumerate() {
        if *s < 0 {
            return Err(Error::arg(arg, format!("negative stride {s} in dim {i}")));
        }
    }
    // The kernels index with signed 64-bit offsets.
    if t.span().is_none_or(|s| s > i64::MAX as u64) {
        return Err(Error::arg(arg, "shape and strides overflow 64-bit offsets"));
    }
    Ok(())
}

/// Checks q [B, Sq, H, D], k/v [B, Sk, Hkv, D] and the output description; returns the problem.
pub fn check(q: &TensorDesc, k: &TensorDesc, v: &TensorDesc, o: &TensorDesc, opts: &AttnOptions) -> Result<Problem> {
    check_desc("q", q)?;
    check_desc("k", k)?;
    check_desc("v", v)?;
    check_desc("out", o)?;
    let [b, sq, h, d] = q.shape;
    let [bk, sk, hk, dk] = k.shape;
    if k.dtype != q.dtype {
        return Err(Error::arg("k", format!("dtype {} differs from q's {}", k.dtype.name(), q.dtype.name())));
    }
    if v.dtype != q.dtype {
        return Err(Error::arg("v", format!("dtype {} differs from q's {}", v.dtype.name(), q.dtype.name())));
    }
    if o.dtype != q.dtype {
        return Err(Error::arg("out", format!("dtype {} differs from q's {}", o.dtype.name(), q.dtype.name())));
    }
    if bk != b {
        return Err(Error::arg("k", format!("batch {bk} differs from q's batch {b}")));
    }
    if dk != d {
        return Err(Error::arg("k", format!("head dim {dk} differs from q's head dim {d}")));
    }
    if v.shape != k.shape {
        return Err(Error::arg("v", format!("shape {:?} differs from k's shape {:?}", v.shape, k.shape)));
    }
    if o.shape != q.shape {
        return Err(Error::arg("out", format!("shape {:?} differs from q's shape {:?}", o.shape, q.shape)));
    }
    if h > 0 && (hk == 0 || h % hk != 0) {
        return Err(Error::arg("k", format!("query heads ({h}) must be a multiple of key/value heads ({hk})")));
    }
    if d == 0 {
        return Err(Error::arg("q", "head dim is 0"));
    }
    if sq > MAX_SEQLEN {
        return Err(Error::arg("q", format!("sequence length {sq} exceeds {MAX_SEQLEN}")));
    }
    if sk > MAX_SEQLEN {
        return Err(Error::arg("k", format!("sequence length {sk} exceeds {MAX_SEQLEN}")));
    }
    if b > MAX_GRID_YZ {
        return Err(Error::arg("q", format!("batch {b} exceeds {MAX_GRID_YZ}")));
    }
    if h > MAX_GRID_YZ {
        return Err(Error::arg("q", format!("heads {h} exceeds {MAX_GRID_YZ}")));
    }
    let scale = match opts.scale {
        None => 1.0 / (d as f32).sqrt(),
        Some(s) if s.is_finite() && s > 0.0 => s,
        Some(s) => return Err(Error::arg("scale", format!("must be a positive finite number, got {s}"))),
    };
    if opts.mask.is_causal() && opts.window.right.is_some_and(|r| r > 0) {
        return Err(Error::arg(
            "window",
            "a causal mask is the window's right edge at 0: right must be None or 0 with a causal mask",
        ));
    }
    let softcap = match opts.softcap {
        None => None,
        Some(c) if c.is_finite() && c > 0.0 => Some(c),
        Some(c) => return Err(Error::arg("softcap", format!("must be a positive finite number, got {c}"))),
    };
    if sk == 0 && b > 0 && h > 0 && sq > 0 {
        return Err(Error::arg("k", "sequence length is 0: softmax over no keys is undefined"));
    }
    Ok(Problem {
        batch: b,
        heads: h,
        kv_heads: hk,
        seqlen_q: sq,
        seqlen_k: sk,
        head_dim: d,
        dtype: q.dtype,
        mask: opts.mask,
        scale,
        window: opts.window,
        softcap,
    })
}

/// Checks a backward call: q, k, v and out (the forward's output) as [`check`] does, then the
/// gradient of the output `dout` and the gradients `dq` (shaped like q) and `dk`, `dv` (like k), all in
/// q's dtype; returns the problem.
#[allow(clippy::too_many_arguments)]
pub fn check_backward(
    q: &TensorDesc,
    k: &TensorDesc,
    v: &TensorDesc,
    o: &TensorDesc,
    dout: &TensorDesc,
    dq: &TensorDesc,
    dk: &TensorDesc,
    dv: &TensorDesc,
    opts: &BwdOptions,
) -> Result<Problem> {
    let p = check(q, k, v, o, &opts.forward())?;
    for (arg, t, like, like_name) in
        [("dout", dout, q, "q"), ("dq", dq, q, "q"), ("dk", dk, k, "k"), ("dv", dv, k, "k")]
    {
        check_desc(arg, t)?;
        if t.dtype != q.dtype {
            return Err(Error::arg(arg, format!("dtype {} differs from q's {}", t.dtype.name(), q.dtype.name())));
        }
        if t.shape != like.shape {
            return Err(Error::arg(
                arg,
                format!("shape {:?} differs from {like_name}'s shape {:?}", t.shape, like.shape),
            ));
        }
    }
    Ok(p)
}

/// GPU-specific rules: pointer alignment and strides that the 16-byte vector loads need.
pub fn check_gpu_alignment(arg: &'static str, t: &TensorDesc, ptr: u64) -> Result<()> {
    if t.numel() == 0 {
        return Ok(());
    }
    if ptr == 0 {
        return Err(Error::arg(arg, "null device pointer"));
    }
    if ptr % 16 != 0 {
        return Err(Error::arg(arg, format!("device pointer {ptr:#x} is not 16-byte aligned")));
    }
    for (i, s) in t.strides[..3].iter().enumerate() {
        if t.shape[i] > 1 && s % 8 != 0 {
            return Err(Error::arg(
                arg,
                format!("stride {s} of dim {i} is not a multiple of 8 elements (16 bytes); make the tensor contiguous"),
            ));
        }
    }
    Ok(())
}

/// A checked call on the inference paths: the logical problem (batch, longest lengths) and the
/// actual row counts of the tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExtProblem {
    pub problem: Problem,
    /// Rows of q/out (packed total when varlen, else Sq) and of k/v (packed total, pool rows when
    /// paged, else Sk).
    pub total_q: usize,
    pub total_k: usize,
    pub q_packed: bool,
    pub k_packed: bool,
}

fn check_i32_array(arg: &'static str, ptr: u64) -> Result<()> {
    if ptr % 4 != 0 {
        return Err(Error::arg(arg, format!("device pointer {ptr:#x} is not 4-byte aligned (int32 array)")));
    }
    Ok(())
}

/// Checks a forward call on the inference paths ([`KvSpec`]): q/out [B, Sq, H, D] or packed
/// [1, total_q, H, D]; k/v [B, Sk, Hkv, D], packed [1, total_k, Hkv, D] or page pools
/// [num_pages, page_size, Hkv, D]; the device arrays' pointers; then the logical problem as
/// [`check`] does.
pub fn check_ext(
    q: &TensorDesc,
    k: &TensorDesc,
    v: &TensorDesc,
    o: &TensorDesc,
    ext: &KvSpec,
    opts: &AttnOptions,
) -> Result<ExtProblem> {
    for (arg, t) in [("q", q), ("k", k), ("v", v), ("out", o)] {
        check_desc(arg, t)?;
    }
    if v.shape != k.shape {
        return Err(Error::arg("v", format!("shape {:?} differs from k's shape {:?}", v.shape, k.shape)));
    }
    if o.shape != q.shape {
        return Err(Error::arg("out", format!("shape {:?} differs from q's shape {:?}", o.shape, q.shape)));
    }
    let vl = ext.varlen.unwrap_or_default();
    let (q_packed, k_packed) = (vl.cu_seqlens_q != 0, vl.cu_seqlens_k != 0);
    check_i32_array("cu_seqlens_q", vl.cu_seqlens_q)?;
    check_i32_array("cu_seqlens_k", vl.cu_seqlens_k)?;
    check_i32_array("seqused_k", ext.seqused_k)?;
    if ext.sinks % 4 != 0 {
        return Err(Error::arg("sinks", format!("device pointer {:#x} is not 4-byte aligned (fp32 array)", ext.sinks)));
    }
    if ext.varlen.is_some() && !q_packed && !k_packed {
        return Err(Error::arg("cu_seqlens_q", "varlen needs cu_seqlens_q or cu_seqlens_k"));
    }
    let batch = if ext.varlen.is_some() { vl.batch } else { q.shape[0] };
    let (total_q, seqlen_q) = if q_packed {
        if q.shape[0] != 1 {
            return Err(Error::arg("q", format!("packed (varlen) q must be [1, total_q, H, D], got {:?}", q.shape)));
        }
        if vl.max_seqlen_q > q.shape[1] {
            return Err(Error::arg(
                "max_seqlen_q",
                format!("{} exceeds the packed q's {} rows", vl.max_seqlen_q, q.shape[1]),
            ));
        }
        (q.shape[1], vl.max_seqlen_q)
    } else {
        if q.shape[0] != batch {
            return Err(Error::arg("q", format!("batch {} differs from varlen batch {batch}", q.shape[0])));
        }
        (q.shape[1], q.shape[1])
    };
    let (total_k, seqlen_k) = if let Some(pg) = ext.paged {
        if k_packed {
            return Err(Error::arg("cu_seqlens_k", "paged K/V takes its lengths from seqused_k, not cu_seqlens_k"));
        }
        if !supported_page_size(pg.page_size) {
            return Err(Error::arg("page_size", format!("{} is not a power of two in 16..=256", pg.page_size)));
        }
        if k.shape[1] != pg.page_size {
            return Err(Error::arg(
                "k",
                format!("page pool {:?} has pages of {} rows, page_size is {}", k.shape, k.shape[1], pg.page_size),
            ));
        }
        for (arg, t) in [("k", k), ("v", v)] {
            if t.shape[0] > 1 && t.strides[0] != pg.page_size as i64 * t.strides[1] {
                return Err(Error::arg(
                    arg,
                    format!(
                        "pages must be contiguous runs of token rows: page stride {} != page_size x token stride {}",
                        t.strides[0], t.strides[1]
                    ),
                ));
            }
        }
        if pg.block_table == 0 {
            return Err(Error::arg("block_table", "null device pointer"));
        }
        check_i32_array("block_table", pg.block_table)?;
        if pg.seqlen_k == 0 {
            return Err(Error::arg("max_seqlen_k", "paged K/V needs the longest sequence's key count"));
        }
        if pg.stride < pg.seqlen_k.div_ceil(pg.page_size) {
            return Err(Error::arg(
                "block_table",
                format!(
                    "row stride {} holds fewer than the {} pages of {} keys",
                    pg.stride,
                    pg.seqlen_k.div_ceil(pg.page_size),
                    pg.seqlen_k
                ),
            ));
        }
        let pool = k.shape[0].checked_mul(pg.page_size).filter(|&n| n <= i32::MAX as usize);
        let pool = pool.ok_or_else(|| Error::arg("k", "page pool has more than 2^31 rows"))?;
        (pool, pg.seqlen_k)
    } else if k_packed {
        if k.shape[0] != 1 {
            return Err(Error::arg("k", format!("packed (varlen) k must be [1, total_k, Hkv, D], got {:?}", k.shape)));
        }
        if vl.max_seqlen_k > k.shape[1] {
            return Err(Error::arg(
                "max_seqlen_k",
                format!("{} exceeds the packed k's {} rows", vl.max_seqlen_k, k.shape[1]),
            ));
        }
        (k.shape[1], vl.max_seqlen_k)
    } else {
        if k.shape[0] != batch {
            return Err(Error::arg("k", format!("batch {} differs from q's batch {batch}", k.shape[0])));
        }
        (k.shape[1], k.shape[1])
    };
    if total_q > i32::MAX as usize {
        return Err(Error::arg("q", "more than 2^31 rows"));
    }
    if total_k > i32::MAX as usize {
        return Err(Error::arg("k", "more than 2^31 rows"));
    }
    if ext.per_sequence() && opts.mask == Mask::CausalTopLeft {
        return Err(Error::arg(
            "mask",
            "varlen and seqused_k calls align the causal diagonal bottom-right per sequence: use causal_bottom_right",
        ));
    }
    if let Some(n) = ext.num_splits {
        if !(1..=MAX_SPLITS).contains(&n) {
            return Err(Error::arg("num_splits", format!("{n} is outside 1..={MAX_SPLITS}")));
        }
    }
    let [_, _, h, d] = q.shape;
    let [_, _, hk, dk] = k.shape;
    let logical = |b, s, h, d| TensorDesc::contiguous_bshd(b, s, h, d, q.dtype);
    let (ql, kl) = (logical(batch, seqlen_q, h, d), logical(batch, seqlen_k, hk, dk));
    let kl_v = TensorDesc { dtype: v.dtype, ..kl };
    let ol = TensorDesc { dtype: o.dtype, ..ql };
    let kl = TensorDesc { dtype: k.dtype, ..kl };
    let problem = check(&ql, &kl, &kl_v, &ol, opts)?;
    Ok(ExtProblem { problem, total_q, total_k, q_packed, k_packed })
}
