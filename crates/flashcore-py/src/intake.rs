//! Pointer intake: the only file of this crate with `unsafe`. Python hands over tensors as
//! `(data_ptr, shape, strides)` triples in flashcore's logical [batch, seq, heads, head_dim] order
//! (element strides); this file turns them into the core crate's `HostTensor` / `RawTensor`.
//!
//! The contract of every function here is kept by `flashcore._ops`, the only caller: each pointer is
//! `tensor.data_ptr()` of a tensor that stays alive (referenced by the caller's frame) for the whole
//! call, shape and strides are that tensor's own, outputs are freshly allocated tensors that alias
//! nothing, and `_native` is a private module.

use crate::error::{invalid_arg, to_py};
use crate::runtimes;
use flashcore::reference::{self, Element, HostTensor, Precision};
use flashcore::{AttnOptions, BwdOptions, DType, KvSpec, LseOut, Mask, Paged, RawTensor, TensorDesc, Varlen, Window};
use pyo3::prelude::*;

/// `(data_ptr, shape [B, S, H, D], element strides in the same order)`.
pub type Tensor4 = (u64, [usize; 4], [i64; 4]);

fn desc(t: &Tensor4, dtype: DType) -> TensorDesc {
    TensorDesc::new(t.1, t.2, dtype)
}

fn parse_mask(py: Python<'_>, mask: &str) -> PyResult<Mask> {
    mask.parse().map_err(|why: String| invalid_arg(py, "causal", why))
}

/// A host tensor over `len` elements at `ptr`.
///
/// # Safety
/// `ptr` must point to `span` initialised, properly aligned elements of `T` (or `span` is 0), live
/// and not written for `'a`.
unsafe fn host_tensor<'a, T: Element>(
    py: Python<'_>,
    arg: &'static str,
    t: &Tensor4,
    span: usize,
) -> PyResult<HostTensor<'a, T>> {
    let data: &'a [T] = if span == 0 {
        &[]
    } else {
        if t.0 == 0 || t.0 as usize % std::mem::align_of::<T>() != 0 {
            return Err(invalid_arg(py, arg, format!("data pointer {:#x} is null or misaligned", t.0)));
        }
        // SAFETY: non-null and aligned (checked above); length and liveness are this function's contract.
        unsafe { std::slice::from_raw_parts(t.0 as *const T, span) }
    };
    let strides = t.2.map(|s| s as usize); // check() rejected negative strides
    HostTensor::new(data, t.1, strides).map_err(|e| to_py(py, e))
}

/// The span of each description (validated by `check`), as element counts.
fn spans(descs: [&TensorDesc; 3]) -> [usize; 3] {
    descs.map(|d| d.span().unwrap_or(0) as usize)
}

#[allow(clippy::too_many_arguments)]
fn cpu_typed<T: Element>(
    py: Python<'_>,
    q: &Tensor4,
    k: &Tensor4,
    v: &Tensor4,
    out: u64,
    lse: u64,
    mask: Mask,
    scale: f64,
    sp: [usize; 3],
) -> PyResult<()> {
    // SAFETY: the caller passes data_ptr() of live tensors whose shape and strides are the ones
    // given, so `span` elements are readable; nothing writes them during this synchronous call.
    let qt = unsafe { host_tensor::<T>(py, "q", q, sp[0])? };
    // SAFETY: as above.
    let kt = unsafe { host_tensor::<T>(py, "k", k, sp[1])? };
    // SAFETY: as above.
    let vt = unsafe { host_tensor::<T>(py, "v", v, sp[2])? };
    let [b, sq, h, d] = q.1;
    let (n_out, n_lse) = (b * sq * h * d, b * h * sq);
    if n_out > 0 && (out == 0 || out % 8 != 0) {
        return Err(invalid_arg(py, "out", "null or misaligned f64 buffer"));
    }
    if n_lse > 0 && (lse == 0 || lse % 8 != 0) {
        return Err(invalid_arg(py, "lse", "null or misaligned f64 buffer"));
    }
    // The reference runs on rayon threads; Python may run other threads meanwhile.
    let r = py.detach(|| reference::attention(&qt, &kt, &vt, mask, scale, None, Precision::F64));
    let r = r.map_err(|e| to_py(py, e))?;
    if n_out > 0 {
        // SAFETY: `out` is a fresh, contiguous f64 tensor of B·Sq·H·D elements (aligned, checked
        // non-null above) that aliases no input and that nothing else touches during this call.
        let o = unsafe { std::slice::from_raw_parts_mut(out as *mut f64, n_out) };
        o.copy_from_slice(&r.out);
    }
    if n_lse > 0 {
        // SAFETY: as for `out`, with B·H·Sq elements.
        let l = unsafe { std::slice::from_raw_parts_mut(lse as *mut f64, n_lse) };
        l.copy_from_slice(&r.lse);
    }
    Ok(())
}

/// CPU attention (the f64 reference) on host tensors of `dtype` ("f32", "f64", "f16", "bf16").
/// Writes `out` (f64, contiguous [B, Sq, H, D]) and `lse` (f64, [B, H, Sq], natural log).
#[pyfunction]
#[pyo3(signature = (dtype, q, k, v, out, lse, mask, scale))]
#[allow(clippy::too_many_arguments)]
pub fn forward_cpu(
    py: Python<'_>,
    dtype: &str,
    q: Tensor4,
    k: Tensor4,
    v: Tensor4,
    out: u64,
    lse: u64,
    mask: &str,
    scale: f64,
) -> PyResult<()> {
    let mask = parse_mask(py, mask)?;
    if !(scale.is_finite() && scale > 0.0) {
        return Err(invalid_arg(py, "scale", format!("must be a positive finite number, got {scale}")));
    }
    // The shape rules do not depend on the element type: check with a 16-bit stand-in, so CPU and
    // GPU calls are validated by the same code (flashcore::api::check).
    let (dq, dk, dv) = (desc(&q, DType::F16), desc(&k, DType::F16), desc(&v, DType::F16));
    let opts = AttnOptions { mask, scale: Some(scale as f32), return_lse: true, ..Default::default() };
    flashcore::api::check::check(&dq, &dk, &dv, &dq.like(), &opts).map_err(|e| to_py(py, e))?;
    let sp = spans([&dq, &dk, &dv]);
    match dtype {
        "f32" => cpu_typed::<f32>(py, &q, &k, &v, out, lse, mask, scale, sp),
        "f64" => cpu_typed::<f64>(py, &q, &k, &v, out, lse, mask, scale, sp),
        "f16" => cpu_typed::<half::f16>(py, &q, &k, &v, out, lse, mask, scale, sp),
        "bf16" => cpu_typed::<half::bf16>(py, &q, &k, &v, out, lse, mask, scale, sp),
        other => Err(invalid_arg(py, "dtype", format!("`{other}` is not one of f32, f64, f16, bf16"))),
    }
}

/// CUDA attention on device `device`, launched on the raw CUDA stream `stream` (torch's current
/// stream). `out` has q's shape; `lse` points to fp32 [B, H, Sq] (or is 0 for none).
#[pyfunction]
#[pyo3(signature = (device, stream, dtype, q, k, v, out, lse, mask, scale))]
#[allow(clippy::too_many_arguments)]
pub fn forward_cuda(
    py: Python<'_>,
    device: usize,
    stream: usize,
    dtype: &str,
    q: Tensor4,
    k: Tensor4,
    v: Tensor4,
    out: Tensor4,
    lse: u64,
    mask: &str,
    scale: Option<f32>,
) -> PyResult<()> {
    let dt: DType = dtype.parse().map_err(|why: String| invalid_arg(py, "q", why))?;
    let mask = parse_mask(py, mask)?;
    let opts = AttnOptions { mask, scale, return_lse: lse != 0, ..Default::default() };
    let rt = runtimes::get(py, device)?;
    let raw = |t: &Tensor4| RawTensor { ptr: t.0, desc: desc(t, dt) };
    let (rq, rk, rv, ro) = (raw(&q), raw(&k), raw(&v), raw(&out));
    // The launch is asynchronous, but planning may JIT-compile a kernel (seconds): let other Python
    // threads run meanwhile.
    let r = py.detach(|| {
        // SAFETY: the pointers are data_ptr() of live CUDA tensors of `device` with these shapes and
        // strides (flashcore._ops keeps them referenced until the kernel is enqueued, and torch's
        // caching allocator keeps their memory for work queued on the current stream); `out` and
        // `lse` are fresh tensors that alias no input; `stream` is torch's current stream of `device`.
        unsafe { rt.forward_raw(rq, rk, rv, ro, lse, &opts, stream) }
    });
    r.map_err(|e| to_py(py, e))
}

/// FlashAttention's signed window sides: -1 (unbounded) or a key count.
fn check_window(py: Python<'_>, window_left: i64, window_right: i64) -> PyResult<()> {
    for (arg, w) in [("window_left", window_left), ("window_right", window_right)] {
        if w < -1 {
            return Err(invalid_arg(py, arg, format!("{w}: expected -1 (unbounded) or a key count >= 0")));
        }
    }
    Ok(())
}

/// CUDA attention backward on device `device`, launched on the raw CUDA stream `stream` (torch's
/// current stream). `out` and `lse` (fp32 [B, H, Sq], natural log) are the forward's for the same
/// q, k, v, mask and scale; `dout` is the gradient of `out`. Writes `dq` (q's shape) and `dk`, `dv`
/// (k's shape). With `deterministic`, dQ is summed in a fixed order (bitwise-reproducible).
/// `window_left` / `window_right` (-1: unbounded) are the forward's sliding window.
#[pyfunction]
#[pyo3(signature = (device, stream, dtype, q, k, v, out, dout, lse, dq, dk, dv, mask, scale, deterministic,
    window_left=-1, window_right=-1, softcap=None, dlse=0))]
#[allow(clippy::too_many_arguments)]
pub fn backward_cuda(
    py: Python<'_>,
    device: usize,
    stream: usize,
    dtype: &str,
    q: Tensor4,
    k: Tensor4,
    v: Tensor4,
    out: Tensor4,
    dout: Tensor4,
    lse: u64,
    dq: Tensor4,
    dk: Tensor4,
    dv: Tensor4,
    mask: &str,
    scale: Option<f32>,
    deterministic: bool,
    window_left: i64,
    window_right: i64,
    softcap: Option<f32>,
    dlse: u64,
) -> PyResult<()> {
    let dt: DType = dtype.parse().map_err(|why: String| invalid_arg(py, "q", why))?;
    let mask = parse_mask(py, mask)?;
    check_window(py, window_left, window_right)?;
    let window = Window::from_signed(window_left, window_right);
    let opts = BwdOptions { mask, scale, deterministic, window, softcap };
    let raw = |t: &Tensor4| RawTensor { ptr: t.0, desc: desc(t, dt) };
    let (rq, rk, rv, ro, rdo) = (raw(&q), raw(&k), raw(&v), raw(&out), raw(&dout));
    let (rdq, rdk, rdv) = (raw(&dq), raw(&dk), raw(&dv));
    // Shape, stride and alignment rules first: they need no device, so a bad call fails the same way
    // on a machine without a GPU (and before a runtime is opened).
    flashcore::api::check::check_backward(
        &rq.desc, &rk.desc, &rv.desc, &ro.desc, &rdo.desc, &rdq.desc, &rdk.desc, &rdv.desc, &opts,
    )
    .map_err(|e| to_py(py, e))?;
    let named =
        [("q", &rq), ("k", &rk), ("v", &rv), ("out", &ro), ("dout", &rdo), ("dq", &rdq), ("dk", &rdk), ("dv", &rdv)];
    for (name, t) in named {
        flashcore::api::check::check_gpu_alignment(name, &t.desc, t.ptr).map_err(|e| to_py(py, e))?;
    }
    let rt = runtimes::get(py, device)?;
    // Planning may JIT-compile the three backward kernels (seconds): let other Python threads run.
    let r = py.detach(|| {
        // SAFETY: the pointers are data_ptr() of live CUDA tensors of `device` with these shapes and
        // strides (flashcore._ops keeps them referenced until the kernels are enqueued, and torch's
        // caching allocator keeps their memory for work queued on the current stream); dq, dk and dv
        // are fresh tensors that overlap neither each other nor any input; `stream` is torch's
        // current stream of `device`.
        unsafe { rt.backward_raw(rq, rk, rv, ro, rdo, lse, dlse, rdq, rdk, rdv, &opts, stream) }
    });
    r.map_err(|e| to_py(py, e))
}

/// CUDA attention on the inference paths (flashcore::KvSpec): sliding window (`window_*` = -1:
/// unbounded), logit softcap (0.0: none), packed varlen batches (`cu_seqlens_*` int32 pointers,
/// 0 = absent; q/out [1, total_q, H, D], k/v [1, total_k, Hkv, D]), per-sequence key counts
/// (`seqused_k`), paged K/V (`block_table` int32 [batch, block_table_stride], k/v page pools
/// [num_pages, page_size, Hkv, D]), split-KV (`num_splits` 0 = the planner's choice) and attention
/// sinks (`sinks`: fp32 [H] pointer, 0 = none). `lse` is
/// an fp32 pointer (0 = none) with element strides (b, h); varlen uses (0, total_q), i.e. [H, total_q].
#[pyfunction]
#[pyo3(signature = (device, stream, dtype, q, k, v, out, lse, lse_strides, mask, scale, window_left, window_right,
    softcap, cu_seqlens_q, cu_seqlens_k, seqused_k, batch, max_seqlen_q, max_seqlen_k, block_table,
    block_table_stride, page_size, num_splits, sinks=0))]
#[allow(clippy::too_many_arguments)]
pub fn forward_ext_cuda(
    py: Python<'_>,
    device: usize,
    stream: usize,
    dtype: &str,
    q: Tensor4,
    k: Tensor4,
    v: Tensor4,
    out: Tensor4,
    lse: u64,
    lse_strides: (i64, i64),
    mask: &str,
    scale: Option<f32>,
    window_left: i64,
    window_right: i64,
    softcap: f32,
    cu_seqlens_q: u64,
    cu_seqlens_k: u64,
    seqused_k: u64,
    batch: usize,
    max_seqlen_q: usize,
    max_seqlen_k: usize,
    block_table: u64,
    block_table_stride: usize,
    page_size: usize,
    num_splits: usize,
    sinks: u64,
) -> PyResult<()> {
    let dt: DType = dtype.parse().map_err(|why: String| invalid_arg(py, "q", why))?;
    let mask = parse_mask(py, mask)?;
    check_window(py, window_left, window_right)?;
    let opts = AttnOptions {
        mask,
        scale,
        return_lse: lse != 0,
        window: Window::from_signed(window_left, window_right),
        softcap: (softcap != 0.0).then_some(softcap),
    };
    if block_table == 0 && page_size != 0 {
        return Err(invalid_arg(py, "block_table", "page_size given without a block table"));
    }
    let ext = KvSpec {
        varlen: (cu_seqlens_q != 0 || cu_seqlens_k != 0).then_some(Varlen {
            cu_seqlens_q,
            cu_seqlens_k,
            batch,
            max_seqlen_q,
            max_seqlen_k,
        }),
        seqused_k,
        paged: (block_table != 0).then_some(Paged {
            block_table,
            stride: block_table_stride,
            page_size,
            seqlen_k: max_seqlen_k,
        }),
        num_splits: (num_splits != 0).then_some(num_splits),
        sinks,
    };
    let lse = LseOut { ptr: lse, stride_b: lse_strides.0, stride_h: lse_strides.1 };
    let rt = runtimes::get(py, device)?;
    let raw = |t: &Tensor4| RawTensor { ptr: t.0, desc: desc(t, dt) };
    let (rq, rk, rv, ro) = (raw(&q), raw(&k), raw(&v), raw(&out));
    let r = py.detach(|| {
        // SAFETY: as forward_cuda; the int32 arrays are data_ptr() of live int32 CUDA tensors of
        // `device` with batch + 1 (cu_seqlens), batch (seqused_k) and batch x stride (block_table)
        // elements, and `sinks` of a live fp32 CUDA tensor of H values, kept referenced by
        // flashcore._ops until the kernels are enqueued.
        unsafe { rt.forward_ext_raw(rq, rk, rv, ro, lse, &ext, &opts, stream) }
    });
    r.map_err(|e| to_py(py, e))
}

/// Merges two attention outputs of the same queries over disjoint key sets: `out` = the softmax-
/// weighted combination by their LSEs (contiguous fp32 [B, H, S]); `lse_out` (0 = none) gets the
/// combined LSE.
#[pyfunction]
#[pyo3(signature = (device, stream, dtype, o_a, lse_a, o_b, lse_b, out, lse_out))]
#[allow(clippy::too_many_arguments)]
pub fn merge_cuda(
    py: Python<'_>,
    device: usize,
    stream: usize,
    dtype: &str,
    o_a: Tensor4,
    lse_a: u64,
    o_b: Tensor4,
    lse_b: u64,
    out: Tensor4,
    lse_out: u64,
) -> PyResult<()> {
    let dt: DType = dtype.parse().map_err(|why: String| invalid_arg(py, "o_a", why))?;
    let rt = runtimes::get(py, device)?;
    let raw = |t: &Tensor4| RawTensor { ptr: t.0, desc: desc(t, dt) };
    let (ra, rb, ro) = (raw(&o_a), raw(&o_b), raw(&out));
    let r = py.detach(|| {
        // SAFETY: data_ptr() of live CUDA tensors of `device` with these shapes and strides; the
        // LSEs are contiguous fp32 [B, H, S]; `out` and `lse_out` are fresh and alias no input.
        unsafe { rt.merge_raw(ra, lse_a, rb, lse_b, ro, lse_out, stream) }
    });
    r.map_err(|e| to_py(py, e))
}

/// FP8 (e4m3) forward on device `device`, on the raw CUDA stream `stream`: q, k, v float8_e4m3fn,
/// each descale `(data_ptr, granularity)` of fp32 factors ("tensor" [1], "head" [B, H], "block"
/// [B, H, ceil(S / 128)]; flashcore.fp8 checked their shapes); `out` bf16 or fp16 (`out_dtype`) with
/// q's shape; `lse` fp32 [B, H, Sq] or 0.
#[pyfunction]
#[pyo3(signature = (device, stream, out_dtype, q, k, v, q_descale, k_descale, v_descale, out, lse, mask, scale))]
#[allow(clippy::too_many_arguments)]
pub fn forward_fp8_cuda(
    py: Python<'_>,
    device: usize,
    stream: usize,
    out_dtype: &str,
    q: Tensor4,
    k: Tensor4,
    v: Tensor4,
    q_descale: (u64, String),
    k_descale: (u64, String),
    v_descale: (u64, String),
    out: Tensor4,
    lse: u64,
    mask: &str,
    scale: Option<f32>,
) -> PyResult<()> {
    use flashcore::fp8::{Descale, Granularity};
    let odt: DType = out_dtype.parse().map_err(|why: String| invalid_arg(py, "out_dtype", why))?;
    let mask = parse_mask(py, mask)?;
    let gran = |arg: &'static str, d: &(u64, String)| -> PyResult<Descale> {
        let g: Granularity = d.1.parse().map_err(|why: String| invalid_arg(py, arg, why))?;
        Ok(Descale { ptr: d.0, granularity: g })
    };
    let descales = [gran("q_descale", &q_descale)?, gran("k_descale", &k_descale)?, gran("v_descale", &v_descale)?];
    let opts = AttnOptions { mask, scale, return_lse: lse != 0, ..Default::default() };
    let rt = runtimes::get(py, device)?;
    let raw = |t: &Tensor4, dt| RawTensor { ptr: t.0, desc: desc(t, dt) };
    let (rq, rk, rv, ro) = (raw(&q, DType::E4m3), raw(&k, DType::E4m3), raw(&v, DType::E4m3), raw(&out, odt));
    let r = py.detach(|| {
        // SAFETY: as forward_cuda; the descale pointers are data_ptr() of live fp32 CUDA tensors of
        // `device` holding as many factors as their granularity needs (checked by flashcore.fp8).
        unsafe { rt.forward_fp8_raw(rq, rk, rv, descales, ro, lse, &opts, stream) }
    });
    r.map_err(|e| to_py(py, e))
}
