//! Every validation rule of the public API. Each failure names the argument it is about.

use super::args::{AttnOptions, BwdOptions, Problem, TensorDesc};
use crate::error::{Error, Result};

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
