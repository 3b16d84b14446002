//! The inference paths (issue 8): forward calls on packed variable-length batches, KV caches with
//! per-sequence lengths, paged K/V and split-KV (partials merged by the combine kernel), and the
//! merge of two attention outputs over disjoint key sets.

use super::{check_span, fwd_params, lse_out, DeviceTensor, RawTensor, Runtime};
use crate::api::args::{AttnOptions, KvSpec, LseOut, TensorDesc};
use crate::api::check::{check_ext, check_gpu_alignment, ExtProblem};
use crate::error::{Error, Result};
use crate::launch::params::{CombineParams, Sm90Params};
use crate::launch::{self, tma, StreamScratch};
use crate::plan::split::num_splits;
use crate::plan::{forward_launch, rows_per_head, KernelKind, Launch, Variant};
use cudarc::driver::{sys, CudaSlice, CudaStream, DevicePtr, DevicePtrMut};

/// What the planner chose for an inference-path call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExtPlan {
    pub variant: Variant,
    /// Grid of the forward launch (tiles x splits, persistent).
    pub launch: Launch,
    pub num_splits: usize,
    /// Query rows of one head per tile (GQA heads packed when Sq is short).
    pub rows_per_head: usize,
    /// Tiles before splitting: query blocks x head groups x batch.
    pub tiles: usize,
}

/// The int32 device arrays of [`Runtime::forward_ext`], as owned slices (lengths checked).
#[derive(Clone, Copy, Default)]
pub struct KvArrays<'a> {
    pub cu_seqlens_q: Option<&'a CudaSlice<i32>>,
    pub cu_seqlens_k: Option<&'a CudaSlice<i32>>,
    pub seqused_k: Option<&'a CudaSlice<i32>>,
    pub block_table: Option<&'a CudaSlice<i32>>,
    /// Attention sinks, fp32 [heads] ([`KvSpec::sinks`]).
    pub sinks: Option<&'a CudaSlice<f32>>,
}

impl Runtime {
    /// The variant, grid and split count of an inference-path call.
    pub fn plan_ext(&self, ep: &ExtProblem, ext: &KvSpec) -> Result<ExtPlan> {
        let p = &ep.problem;
        let per_seq = ext.per_sequence() || ext.paged.is_some();
        let arch = self.info.arch;
        let smem = self.info.max_smem_per_block;
        // The split decision is made on the kernel and tile the call would run with FC_INFER.
        let v = Variant::forward_ext(arch, p, true, smem)?;
        let l = forward_launch(&v, p, self.info.sm_count);
        let (tiles, blocks) = if v.kind == KernelKind::FwdSm90 {
            let pack = v.tile.block_m() / rows_per_head(&v, p);
            // Keys one tile streams: the window's span when it has both edges, else all.
            let span = match (p.window.left, p.mask.is_causal().then_some(0).or(p.window.right)) {
                (Some(l), Some(r)) => (l + r + rows_per_head(&v, p)).min(p.seqlen_k),
                _ => p.seqlen_k,
            };
            (l.num_m_blocks as usize * (p.heads / pack) * p.batch, span.div_ceil(v.tile.block_n()))
        } else {
            // The portable kernel: one CTA per (query block, head, sequence), several per SM; split
            // when those CTAs cannot cover the SMs (same rule, CTAs for tiles).
            (l.num_m_blocks as usize * p.heads * p.batch, p.seqlen_k.div_ceil(v.tile.block_n()))
        };
        let splits = ext.num_splits.unwrap_or_else(|| num_splits(self.info.sm_count as usize, tiles, blocks));
        // Sinks are added in the inference epilogue (and the combine), so they take FC_INFER too.
        let variant =
            if per_seq || splits > 1 || ext.sinks != 0 { v } else { Variant::forward_ext(arch, p, false, smem)? };
        let mut launch = forward_launch(&variant, p, self.info.sm_count);
        if variant.kind == KernelKind::FwdSm90 {
            launch.grid.0 = (tiles * splits).min(variant.tile.resident_ctas(self.info.sm_count) as usize).max(1) as u32;
        } else {
            // kernels/sm80/fwd.cu: blockIdx.x = query block * num_splits + split.
            launch.grid.0 *= splits as u32;
        }
        Ok(ExtPlan { variant, launch, num_splits: splits, rows_per_head: rows_per_head(&variant, p), tiles })
    }

    /// Attention forward on the inference paths ([`KvSpec`]), on raw device pointers and a stream
    /// owned by the caller. Shapes: q/out [B, Sq, H, D] or, varlen, [1, total_q, H, D]; k/v
    /// [B, Sk, Hkv, D], varlen [1, total_k, Hkv, D] or paged pools [num_pages, page_size, Hkv, D].
    /// `lse` (optional) takes the layout [`LseOut`] describes. Split-KV partials live in fp32
    /// scratch allocated and freed in stream order (CUDA-graph capturable).
    ///
    /// # Safety
    /// As [`Runtime::forward_raw`]; the int32 arrays in `ext` must be device allocations of this
    /// device of at least batch + 1 (cu_seqlens), batch (seqused_k) and batch x stride
    /// (block_table) elements, and `ext.sinks` (when not 0) of at least H fp32 values. The int32
    /// values are trusted for meaning, not for memory safety: the kernel clamps what it reads to
    /// the tensors' bounds.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn forward_ext_raw(
        &self,
        q: RawTensor,
        k: RawTensor,
        v: RawTensor,
        out: RawTensor,
        lse: LseOut,
        ext: &KvSpec,
        opts: &AttnOptions,
        stream: usize,
    ) -> Result<()> {
        // SAFETY: the caller guarantees the stream is live on this device.
        let s = unsafe { launch::borrow_stream(&self.ctx, stream as sys::CUstream) };
        // SAFETY: forwarded contract.
        unsafe { self.forward_ext_on(q, k, v, out, lse, ext, opts, &s) }
    }

    /// [`Runtime::forward_ext_raw`] on owned buffers and the runtime's stream. The pointers in
    /// `spec` are replaced by `arrays`' (whose lengths are checked); `lse`, when given, is laid out
    /// [B, H, Sq] (dense q) or [H, total_q] (varlen q).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_ext(
        &self,
        q: &DeviceTensor,
        k: &DeviceTensor,
        v: &DeviceTensor,
        out: &mut DeviceTensor,
        lse: Option<&mut CudaSlice<f32>>,
        arrays: &KvArrays,
        spec: &KvSpec,
        opts: &AttnOptions,
    ) -> Result<()> {
        for (name, t) in [("q", q), ("k", k), ("v", v), ("out", &*out)] {
            check_span(name, &t.desc, t.buf.len())?;
        }
        let s = &self.stream;
        let mut ext = *spec;
        let batch = ext.varlen.map_or(q.desc.shape[0], |vl| vl.batch);
        let need = |arg: &'static str, a: Option<&CudaSlice<i32>>, n: usize| -> Result<u64> {
            match a {
                None => Ok(0),
                Some(x) if x.len() >= n => Ok(x.device_ptr(s).0),
                Some(x) => Err(Error::arg(arg, format!("needs {n} int32 values, buffer has {}", x.len()))),
            }
        };
        let cu_q = need("cu_seqlens_q", arrays.cu_seqlens_q, batch + 1)?;
        let cu_k = need("cu_seqlens_k", arrays.cu_seqlens_k, batch + 1)?;
        if let Some(vl) = ext.varlen.as_mut() {
            vl.cu_seqlens_q = cu_q;
            vl.cu_seqlens_k = cu_k;
        } else if cu_q != 0 || cu_k != 0 {
            return Err(Error::arg("cu_seqlens_q", "cu_seqlens arrays given without a varlen spec"));
        }
        ext.seqused_k = need("seqused_k", arrays.seqused_k, batch)?;
        if let Some(pg) = ext.paged.as_mut() {
            pg.block_table = need("block_table", arrays.block_table, batch * pg.stride)?;
        }
        let [b, sq, h, _] = q.desc.shape;
        ext.sinks = match arrays.sinks {
            None => 0,
            Some(x) if x.len() >= h => x.device_ptr(s).0,
            Some(x) => return Err(Error::arg("sinks", format!("needs {h} fp32 values, buffer has {}", x.len()))),
        };
        let packed = ext.varlen.is_some_and(|vl| vl.cu_seqlens_q != 0);
        let (rows, lse_strides) =
            if packed { (h * sq, (0, sq as i64)) } else { (b * h * sq, ((h * sq) as i64, sq as i64)) };
        let (lp, _g5) = lse_out(lse, rows, s)?;
        let (qp, _g1) = q.buf.device_ptr(s);
        let (kp, _g2) = k.buf.device_ptr(s);
        let (vp, _g3) = v.buf.device_ptr(s);
        let odesc = out.desc;
        let (op, _g4) = out.buf.device_ptr_mut(s);
        let raw = |ptr, desc| RawTensor { ptr, desc };
        let lse = LseOut { ptr: lp, stride_b: lse_strides.0, stride_h: lse_strides.1 };
        // SAFETY: every pointer comes from a live CudaSlice of this context whose length was checked
        // against its description (tensors) or the batch (int32 arrays) above.
        unsafe {
            self.forward_ext_on(raw(qp, q.desc), raw(kp, k.desc), raw(vp, v.desc), raw(op, odesc), lse, &ext, opts, s)
        }
    }

    #[allow(clippy::too_many_arguments)]
    unsafe fn forward_ext_on(
        &self,
        q: RawTensor,
        k: RawTensor,
        v: RawTensor,
        out: RawTensor,
        lse: LseOut,
        ext: &KvSpec,
        opts: &AttnOptions,
        stream: &CudaStream,
    ) -> Result<()> {
        let ep = check_ext(&q.desc, &k.desc, &v.desc, &out.desc, ext, opts)?;
        let p = ep.problem;
        if p.is_empty() {
            return Ok(());
        }
        for (name, t) in [("q", &q), ("k", &k), ("v", &v), ("out", &out)] {
            check_gpu_alignment(name, &t.desc, t.ptr)?;
        }
        if lse.ptr % 4 != 0 {
            return Err(Error::arg("lse", "pointer is not 4-byte aligned"));
        }
        if lse.stride_b < 0 || lse.stride_h < 0 {
            return Err(Error::arg("lse", "negative stride"));
        }
        let plan = self.plan_ext(&ep, ext)?;
        let hopper = plan.variant.kind == KernelKind::FwdSm90;
        let kernel = self.kernel(&plan.variant)?;
        let vl = ext.varlen.unwrap_or_default();
        let (lse_sb, lse_sh) = if lse.ptr != 0 {
            (lse.stride_b, lse.stride_h)
        } else if ep.q_packed {
            (0, ep.total_q as i64)
        } else {
            ((p.heads * p.seqlen_q) as i64, p.seqlen_q as i64)
        };
        let mut params = fwd_params(&p, &q, &k, &v, &out, lse.ptr, plan.launch.num_m_blocks, plan.rows_per_head);
        params.cu_seqlens_q = vl.cu_seqlens_q;
        params.cu_seqlens_k = vl.cu_seqlens_k;
        params.seqused_k = ext.seqused_k;
        params.lse_stride_b = lse_sb;
        params.lse_stride_h = lse_sh;
        params.num_splits = plan.num_splits as i32;
        params.sinks = ext.sinks;
        if let Some(pg) = ext.paged {
            params.block_table = pg.block_table;
            params.block_table_stride_b = pg.stride as i64;
            params.page_size = pg.page_size as i32;
        }
        // Split partials: one fp32 row per LSE index (the largest index + 1 rows per split).
        let accum_rows = if ep.q_packed {
            (p.heads as i64 - 1) * lse_sh + ep.total_q as i64
        } else {
            (p.batch as i64 - 1) * lse_sb + (p.heads as i64 - 1) * lse_sh + p.seqlen_q as i64
        } as usize;
        let scratch = if plan.num_splits > 1 {
            self.ctx.bind_to_thread()?;
            let o_bytes = (plan.num_splits * accum_rows * p.head_dim * 4).div_ceil(256) * 256;
            let s = StreamScratch::new(o_bytes + plan.num_splits * accum_rows * 4, stream)?;
            params.o_accum = s.ptr();
            params.lse_accum = s.ptr() + o_bytes as u64;
            params.accum_split_rows = accum_rows as i64;
            Some(s)
        } else {
            None
        };
        let bm = plan.variant.tile.block_m() as u32;
        let bn = plan.variant.tile.block_n();
        let rows = plan.rows_per_head as u32;
        // Paged pools are one [1, pages x page_size, Hkv, D] tensor to TMA, a box per page.
        let kv_map = |arg: &'static str, t: &RawTensor| match ext.paged {
            Some(pg) => {
                let [_, _, hk, d] = t.desc.shape;
                let flat =
                    TensorDesc::new([1, ep.total_k, hk, d], [0, t.desc.strides[1], t.desc.strides[2], 1], t.desc.dtype);
                tma::encode_bshd(arg, t.ptr, &flat, pg.page_size.min(bn) as u32, 1)
            }
            None => tma::encode_bshd(arg, t.ptr, &t.desc, bn as u32, 1),
        };
        let counter = self.tile_counter();
        // The portable kernel (kernels/sm80/fwd.cu) takes the same FwdParams, without tensor maps.
        let p90 = if !hopper {
            None
        } else {
            Some(Sm90Params {
                base: params,
                tile_counter: counter,
                total_q: ep.total_q as i32,
                total_k: ep.total_k as i32,
                tma_q: tma::encode_bshd("q", q.ptr, &q.desc, rows, bm / rows)?,
                tma_k: kv_map("k", &k)?,
                tma_v: kv_map("v", &v)?,
                // Dense calls (no FC_INFER) keep the TMA-store epilogue where the planner chose it.
                tma_o: if plan.variant.tma_store {
                    let wg_rows = rows.min(64);
                    tma::encode_bshd("out", out.ptr, &out.desc, wg_rows, 64 / wg_rows)?
                } else {
                    Default::default()
                },
            })
        };
        let combine = if plan.num_splits > 1 {
            let cv = Variant::combine(self.info.arch, p.head_dim, p.dtype, false)?;
            Some(self.kernel(&cv)?)
        } else {
            None
        };
        self.ctx.bind_to_thread()?;
        match &p90 {
            Some(p90) => {
                // SAFETY: descriptions checked by check_ext(); pointer validity is this function's
                // contract; `counter` is inside the ring that `self._tile_counters` keeps alive; the
                // partials' scratch is freed (in stream order) after the combine kernel reads it.
                unsafe { launch::launch_forward(&kernel.0, stream, &plan.launch, p90) }?;
            }
            // SAFETY: as above; the grid is (query blocks x splits, heads, sequences) (plan_ext).
            None => unsafe { launch::launch_forward(&kernel.0, stream, &plan.launch, &params) }?,
        }
        if let Some(ck) = combine {
            let st = |t: &RawTensor| (t.desc.strides[0], t.desc.strides[1], t.desc.strides[2]);
            let (ob, os, oh) = st(&out);
            let cp = CombineParams {
                o: out.ptr,
                lse: lse.ptr,
                in_o: [params.o_accum, 0],
                in_lse: [params.lse_accum, 0],
                o_stride_b: ob,
                o_stride_s: os,
                o_stride_h: oh,
                lse_stride_b: lse_sb,
                lse_stride_h: lse_sh,
                accum_split_rows: accum_rows as i64,
                cu_seqlens_q: vl.cu_seqlens_q,
                batch: p.batch as i32,
                heads: p.heads as i32,
                seqlen_q: p.seqlen_q as i32,
                total_q: ep.total_q as i32,
                num_splits: plan.num_splits as i32,
                sinks: ext.sinks,
                ..Default::default()
            };
            let cl = combine_launch(p.batch * p.heads * p.seqlen_q);
            if p90.is_some() {
                // SAFETY: as above; the combine (attn/combine.cu) waits for the Hopper forward in
                // griddepcontrol.wait before it reads the partials (launch::launch_dependent).
                unsafe { launch::launch_dependent(&ck.0, stream, &cl, &cp) }?;
            } else {
                // SAFETY: as above; reads the partials the forward just wrote (stream order).
                unsafe { launch::launch_forward(&ck.0, stream, &cl, &cp) }?;
            }
        }
        drop(scratch);
        Ok(())
    }

    /// Merges two attention outputs of the same queries over disjoint key sets (e.g. a prefix
    /// cache and new tokens): out = (e^{lse_a} o_a + e^{lse_b} o_b) / (e^{lse_a} + e^{lse_b}) and
    /// lse_out = log(e^{lse_a} + e^{lse_b}). o_a, o_b and out are [B, S, H, D] in one 16-bit dtype;
    /// every LSE is contiguous fp32 [B, H, S] (lse_out may be 0). A row with both LSEs -inf gets 0
    /// and -inf.
    ///
    /// # Safety
    /// All pointers must be device allocations of this device, large enough for their
    /// descriptions; `out` and `lse_out` must not overlap the inputs; `stream` a live stream of it.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn merge_raw(
        &self,
        o_a: RawTensor,
        lse_a: u64,
        o_b: RawTensor,
        lse_b: u64,
        out: RawTensor,
        lse_out: u64,
        stream: usize,
    ) -> Result<()> {
        // SAFETY: the caller guarantees the stream is live on this device.
        let s = unsafe { launch::borrow_stream(&self.ctx, stream as sys::CUstream) };
        // SAFETY: forwarded contract.
        unsafe { self.merge_on(o_a, lse_a, o_b, lse_b, out, lse_out, &s) }
    }

    /// [`Runtime::merge_raw`] on owned buffers and the runtime's stream; returns the merged output
    /// (o_a's layout) and its LSE.
    pub fn merge(
        &self,
        o_a: &DeviceTensor,
        lse_a: &CudaSlice<f32>,
        o_b: &DeviceTensor,
        lse_b: &CudaSlice<f32>,
    ) -> Result<(DeviceTensor, CudaSlice<f32>)> {
        let [b, sq, h, _] = o_a.desc.shape;
        let rows = b * h * sq;
        for (name, t) in [("o_a", o_a), ("o_b", o_b)] {
            check_span(name, &t.desc, t.buf.len())?;
        }
        for (name, l) in [("lse_a", lse_a), ("lse_b", lse_b)] {
            if l.len() < rows {
                return Err(Error::arg(name, format!("needs {rows} floats, buffer has {}", l.len())));
            }
        }
        let s = &self.stream;
        let desc = o_a.desc.like();
        let mut out = DeviceTensor { buf: s.alloc_zeros::<u16>(desc.span().unwrap_or(0).max(1) as usize)?, desc };
        let mut lse = s.alloc_zeros::<f32>(rows.max(1))?;
        {
            let (ap, _g1) = o_a.buf.device_ptr(s);
            let (bp, _g2) = o_b.buf.device_ptr(s);
            let (la, _g3) = lse_a.device_ptr(s);
            let (lb, _g4) = lse_b.device_ptr(s);
            let (op, _g5) = out.buf.device_ptr_mut(s);
            let (lo, _g6) = lse.device_ptr_mut(s);
            let raw = |ptr, desc| RawTensor { ptr, desc };
            // SAFETY: live slices of this context, lengths checked above; out and lse are fresh.
            unsafe { self.merge_on(raw(ap, o_a.desc), la, raw(bp, o_b.desc), lb, raw(op, desc), lo, s) }?;
        }
        Ok((out, lse))
    }

    #[allow(clippy::too_many_arguments)]
    unsafe fn merge_on(
        &self,
        o_a: RawTensor,
        lse_a: u64,
        o_b: RawTensor,
        lse_b: u64,
        out: RawTensor,
        lse_out: u64,
        stream: &CudaStream,
    ) -> Result<()> {
        for (name, t) in [("o_a", &o_a), ("o_b", &o_b), ("out", &out)] {
            if t.desc.shape != o_a.desc.shape {
                return Err(Error::arg(
                    name,
                    format!("shape {:?} differs from o_a's {:?}", t.desc.shape, o_a.desc.shape),
                ));
            }
            if t.desc.dtype != o_a.desc.dtype {
                return Err(Error::arg(name, "dtype differs from o_a's"));
            }
            if t.desc.shape[3] > 1 && t.desc.strides[3] != 1 {
                return Err(Error::arg(name, "head dim must have stride 1"));
            }
            if t.desc.strides.iter().any(|s| *s < 0) || t.desc.span().is_none_or(|s| s > i64::MAX as u64) {
                return Err(Error::arg(name, "negative strides or a span past 64-bit offsets"));
            }
        }
        let [b, sq, h, d] = o_a.desc.shape;
        if b * sq * h * d == 0 {
            return Ok(());
        }
        if d > 256 {
            return Err(Error::arg("o_a", format!("head dim {d} exceeds 256")));
        }
        for (name, ptr) in [("o_a", o_a.ptr), ("o_b", o_b.ptr), ("out", out.ptr)] {
            if ptr == 0 || ptr % 2 != 0 {
                return Err(Error::arg(name, format!("device pointer {ptr:#x} is null or not 2-byte aligned")));
            }
        }
        for (name, ptr, required) in [("lse_a", lse_a, true), ("lse_b", lse_b, true), ("lse_out", lse_out, false)] {
            if (required && ptr == 0) || ptr % 4 != 0 {
                return Err(Error::arg(name, format!("device pointer {ptr:#x} is null or not 4-byte aligned")));
            }
        }
        let kernel = self.kernel(&Variant::combine(self.info.arch, d, o_a.desc.dtype, true)?)?;
        let st = |t: &RawTensor| (t.desc.strides[0], t.desc.strides[1], t.desc.strides[2]);
        let ((ab, as_, ah), (bb, bs, bh), (ob, os, oh)) = (st(&o_a), st(&o_b), st(&out));
        let cp = CombineParams {
            o: out.ptr,
            lse: lse_out,
            in_o: [o_a.ptr, o_b.ptr],
            in_lse: [lse_a, lse_b],
            o_stride_b: ob,
            o_stride_s: os,
            o_stride_h: oh,
            in_stride_b: [ab, bb],
            in_stride_s: [as_, bs],
            in_stride_h: [ah, bh],
            lse_stride_b: (h * sq) as i64,
            lse_stride_h: sq as i64,
            batch: b as i32,
            heads: h as i32,
            seqlen_q: sq as i32,
            total_q: sq as i32,
            num_splits: 2,
            ..Default::default()
        };
        self.ctx.bind_to_thread()?;
        // SAFETY: shapes and pointers checked above; validity of the allocations is the contract.
        unsafe { launch::launch_forward(&kernel.0, stream, &combine_launch(b * h * sq), &cp) }
    }
}

/// One warp per output row, 8 rows per CTA (kernels/attn/combine.cu).
fn combine_launch(rows: usize) -> Launch {
    Launch {
        grid: (rows.div_ceil(8) as u32, 1, 1),
        block: (crate::plan::variant::COMBINE_THREADS as u32, 1, 1),
        smem_bytes: 0,
        num_m_blocks: 0,
    }
}
