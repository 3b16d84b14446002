//! The public GPU entry point: a device, its kernels, and the forward and backward calls in their
//! three forms (owned buffers, caller-provided outputs, raw pointers + stream for the Python layer).

use crate::api::args::{AttnOptions, BwdOptions, Problem, TensorDesc};
use crate::api::check::{check, check_backward, check_gpu_alignment};
use crate::error::{Error, Result};
use crate::jit::{Compiled, Jit};
use crate::launch::params::{BwdParams, FwdParams, Sm90BwdParams, Sm90Params};
use crate::launch::{self, tma, DeviceInfo, Kernel, StreamScratch};
use crate::plan::{
    backward_launches, forward_launch, rows_per_head, BwdLaunches, BwdPath, FwdExt, KernelKind, Launch, Variant,
};
use cudarc::driver::{sys, CudaContext, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, SyncOnDrop};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

mod ext;
mod fp8;
pub use ext::{ExtPlan, KvArrays};

/// A tensor in device memory: 16-bit elements (fp16 or bf16 bits) and their description.
pub struct DeviceTensor {
    pub buf: CudaSlice<u16>,
    pub desc: TensorDesc,
}

/// A tensor given as a raw device pointer (e.g. a torch tensor's `data_ptr()`).
#[derive(Clone, Copy, Debug)]
pub struct RawTensor {
    pub ptr: u64,
    pub desc: TensorDesc,
}

/// How a kernel was obtained on its first use in this process.
#[derive(Clone, Debug)]
pub struct KernelReport {
    pub variant: String,
    pub from_disk_cache: bool,
    pub seconds: f64,
    pub num_regs: i32,
    pub local_bytes: i32,
}

/// One CUDA device with flashcore's kernels.
pub struct Runtime {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    info: DeviceInfo,
    jit: Jit,
    kernels: Mutex<HashMap<Variant, Arc<(Kernel, KernelReport)>>>,
    /// Tile counters of the persistent sm90 kernel, one per launch in a ring, so launches in flight
    /// on different streams never share one. Zeroed once here; a launch leaves its slot at zero
    /// when it ends (the CTA that takes the last ticket resets it, kernels/sm90/producer.cuh), which
    /// saves a memset node per launch (~2 us of a 0.1 ms S512 forward).
    _tile_counters: CudaSlice<u32>,
    /// Its device address, taken once: per-launch use goes through the raw address so no cudarc
    /// event bookkeeping lands on the caller's stream (that would break CUDA-graph capture).
    tile_counters_ptr: u64,
    next_counter: AtomicUsize,
}

/// Slots in the tile-counter ring (launches that may be in flight at once).
const TILE_COUNTERS: usize = 4096;

impl Runtime {
    /// Opens device `ordinal`. Fails with a clear error when there is no driver or no GPU.
    pub fn new(ordinal: usize) -> Result<Runtime> {
        let (ctx, info) = launch::open_device(ordinal)?;
        let stream = ctx.default_stream();
        let tile_counters = stream.alloc_zeros::<u32>(TILE_COUNTERS)?;
        let tile_counters_ptr = tile_counters.device_ptr(&stream).0;
        stream.synchronize()?;
        Ok(Runtime {
            ctx,
            stream,
            info,
            jit: Jit::default(),
            kernels: Mutex::new(HashMap::new()),
            _tile_counters: tile_counters,
            tile_counters_ptr,
            next_counter: AtomicUsize::new(0),
        })
    }

    /// The tile counter for one persistent sm90 launch (the ring's next slot; zero by the time the
    /// launch runs, since the launch that used the slot before reset it when it ended).
    pub(crate) fn tile_counter(&self) -> u64 {
        let slot = self.next_counter.fetch_add(1, Ordering::Relaxed) % TILE_COUNTERS;
        self.tile_counters_ptr + 4 * slot as u64
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }
    pub fn jit(&self) -> &Jit {
        &self.jit
    }
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The forward variant this device would run for a problem.
    pub fn plan(&self, p: &Problem) -> Result<(Variant, Launch)> {
        let v = Variant::forward_for(self.info.arch, p, self.info.max_smem_per_block)?;
        Ok((v, forward_launch(&v, p, self.info.sm_count)))
    }

    /// Compiles (or loads from the disk cache) and loads a variant; cached in-process.
    pub fn kernel(&self, v: &Variant) -> Result<Arc<(Kernel, KernelReport)>> {
        let mut map = self.kernels.lock().map_err(|_| Error::Cache("kernel map poisoned".into()))?;
        if let Some(k) = map.get(v) {
            return Ok(k.clone());
        }
        let Compiled { cubin, from_disk_cache, seconds, .. } = self.jit.compile(v)?;
        let smem = v.smem_bytes();
        let cluster_block = v.ext.cluster.then_some(v.threads() as u32);
        let k = launch::load_kernel(&self.ctx, &self.stream, cubin, v.kind.entry_symbol(), smem, cluster_block)?;
        let report = KernelReport {
            variant: v.to_string(),
            from_disk_cache,
            seconds,
            num_regs: k.num_regs,
            local_bytes: k.local_bytes,
        };
        let entry = Arc::new((k, report));
        map.insert(*v, entry.clone());
        Ok(entry)
    }

    /// Copies host 16-bit values to a new device tensor described by `desc`.
    pub fn upload(&self, host: &[u16], desc: TensorDesc) -> Result<DeviceTensor> {
        let span = desc.span().ok_or_else(|| Error::arg("desc", "shape and strides overflow"))? as usize;
        if host.len() < span {
            return Err(Error::arg("host", format!("{} elements, the description spans {span}", host.len())));
        }
        Ok(DeviceTensor { buf: self.stream.clone_htod(host)?, desc })
    }

    /// A new device tensor filled with `fill` (e.g. NaN bits, to poison outputs before a launch).
    pub fn alloc_filled(&self, desc: TensorDesc, fill: u16) -> Result<DeviceTensor> {
        let span = desc.span().ok_or_else(|| Error::arg("desc", "shape and strides overflow"))? as usize;
        let host = vec![fill; span.max(1)];
        Ok(DeviceTensor { buf: self.stream.clone_htod(&host)?, desc })
    }

    pub fn download(&self, t: &DeviceTensor) -> Result<Vec<u16>> {
        Ok(self.stream.clone_dtoh(&t.buf)?)
    }

    /// Attention forward into a new output (q's layout). Returns (out, lse if requested).
    pub fn forward(
        &self,
        q: &DeviceTensor,
        k: &DeviceTensor,
        v: &DeviceTensor,
        opts: &AttnOptions,
    ) -> Result<(DeviceTensor, Option<CudaSlice<f32>>)> {
        let desc = q.desc.like();
        let mut out =
            DeviceTensor { buf: self.stream.alloc_zeros::<u16>(desc.span().unwrap_or(0).max(1) as usize)?, desc };
        let [b, sq, h, _] = q.desc.shape;
        let mut lse = if opts.return_lse { Some(self.stream.alloc_zeros::<f32>((b * h * sq).max(1))?) } else { None };
        self.forward_into(q, k, v, &mut out, lse.as_mut(), opts)?;
        Ok((out, lse))
    }

    /// Attention forward into caller-provided buffers. `lse`, when given, holds B·H·Sq floats.
    pub fn forward_into(
        &self,
        q: &DeviceTensor,
        k: &DeviceTensor,
        v: &DeviceTensor,
        out: &mut DeviceTensor,
        lse: Option<&mut CudaSlice<f32>>,
        opts: &AttnOptions,
    ) -> Result<()> {
        for (name, t) in [("q", q), ("k", k), ("v", v), ("out", &*out)] {
            check_span(name, &t.desc, t.buf.len())?;
        }
        let [b, sq, h, _] = q.desc.shape;
        let s = &self.stream;
        let (lp, _g5) = lse_out(lse, b * h * sq, s)?;
        let (qp, _g1) = q.buf.device_ptr(s);
        let (kp, _g2) = k.buf.device_ptr(s);
        let (vp, _g3) = v.buf.device_ptr(s);
        let odesc = out.desc;
        let (op, _g4) = out.buf.device_ptr_mut(s);
        let raw = |ptr, desc| RawTensor { ptr, desc };
        // SAFETY: every pointer comes from a live CudaSlice of this context whose length was checked
        // against its description above; the guards keep cudarc's stream ordering for them.
        unsafe { self.forward_on(raw(qp, q.desc), raw(kp, k.desc), raw(vp, v.desc), raw(op, odesc), lp, opts, s) }
    }

    /// Attention forward on raw device pointers, on a stream owned by the caller (PyTorch's current
    /// stream). `lse` is 0 or a pointer to B·H·Sq fp32 values laid out [B, H, Sq].
    ///
    /// # Safety
    /// All pointers must be device allocations of this runtime's device, large enough for their
    /// descriptions, not written by anything else until the kernel finishes; `stream` must be a live
    /// stream of this device (0 = the legacy default stream).
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn forward_raw(
        &self,
        q: RawTensor,
        k: RawTensor,
        v: RawTensor,
        out: RawTensor,
        lse: u64,
        opts: &AttnOptions,
        stream: usize,
    ) -> Result<()> {
        // SAFETY: the caller guarantees the stream is live on this device.
        let s = unsafe { launch::borrow_stream(&self.ctx, stream as sys::CUstream) };
        // SAFETY: forwarded contract.
        unsafe { self.forward_on(q, k, v, out, lse, opts, &s) }
    }

    #[allow(clippy::too_many_arguments)]
    unsafe fn forward_on(
        &self,
        q: RawTensor,
        k: RawTensor,
        v: RawTensor,
        out: RawTensor,
        lse: u64,
        opts: &AttnOptions,
        stream: &CudaStream,
    ) -> Result<()> {
        let p = check(&q.desc, &k.desc, &v.desc, &out.desc, opts)?;
        if p.is_empty() {
            return Ok(());
        }
        for (name, t) in [("q", &q), ("k", &k), ("v", &v), ("out", &out)] {
            check_gpu_alignment(name, &t.desc, t.ptr)?;
        }
        if lse % 4 != 0 {
            return Err(Error::arg("lse", "pointer is not 4-byte aligned"));
        }
        let (variant, _) = self.plan(&p)?;
        let mut variant = variant.with_sum_mma(lse != 0);
        let mut launch = forward_launch(&variant, &p, self.info.sm_count);
        let mut kernel = self.kernel(&variant)?;
        if kernel.0.max_active_clusters == Some(0) {
            // The device (or its share of it: MPS, a green context) cannot hold one cluster of two
            // CTAs of this size: the same kernel without clusters.
            variant = Variant { ext: FwdExt { cluster: false, ..variant.ext }, ..variant };
            launch = forward_launch(&variant, &p, self.info.sm_count);
            kernel = self.kernel(&variant)?;
        }
        if let Some(max) = kernel.0.max_active_clusters {
            // Persistent: clusters beyond those the device holds at once would only wait for the
            // tiles to run out (the tickets are dynamic), so the planned grid stops there.
            launch.grid.0 = launch.grid.0.min(2 * max);
        }
        if let (KernelKind::FwdSm90, Some(n)) = (variant.kind, crate::plan::knobs::knobs().sm90_grid) {
            // Any grid works with the dynamic tile counter; clusters take tile pairs.
            let n = if variant.ext.cluster { (n / 2 * 2).max(2) } else { n };
            launch.grid.0 = launch.grid.0.min(n);
        }
        let rows = rows_per_head(&variant, &p);
        let params = fwd_params(&p, &q, &k, &v, &out, lse, launch.num_m_blocks, rows);
        self.ctx.bind_to_thread()?;
        match variant.kind {
            KernelKind::FwdSm80 => {
                // SAFETY: descriptions checked by check(); pointer validity is this function's contract.
                unsafe { launch::launch_forward(&kernel.0, stream, &launch, &params) }
            }
            KernelKind::FwdSm90 => {
                let bm = variant.tile.block_m() as u32;
                let bn = variant.tile.block_n() as u32;
                let counter = self.tile_counter();
                // Tensor maps first: a tensor TMA rejects returns before anything is queued.
                let p90 = Sm90Params {
                    base: params,
                    tile_counter: counter,
                    total_q: 0,
                    total_k: 0,
                    // A packed tile's Q is rows_per_head rows of `pack` heads; each consumer
                    // warpgroup stores its 64 rows as min(64, rows_per_head) rows of the heads they span.
                    tma_q: tma::encode_bshd("q", q.ptr, &q.desc, rows as u32, bm / rows as u32)?,
                    tma_k: tma::encode_bshd("k", k.ptr, &k.desc, bn, 1)?,
                    tma_v: tma::encode_bshd("v", v.ptr, &v.desc, bn, 1)?,
                    tma_o: if variant.tma_store {
                        let wg_rows = rows.min(64) as u32;
                        tma::encode_bshd("out", out.ptr, &out.desc, wg_rows, 64 / wg_rows)?
                    } else {
                        Default::default()
                    },
                };
                // SAFETY: descriptions checked by check(); pointer validity is this function's
                // contract; `counter` is inside the ring, which `self._tile_counters` keeps alive; the
                // tensor maps describe the same checked allocations.
                unsafe { launch::launch_forward(&kernel.0, stream, &launch, &p90) }
            }
            KernelKind::BwdPrep
            | KernelKind::BwdSm80
            | KernelKind::BwdPost
            | KernelKind::BwdSm90
            | KernelKind::Combine
            | KernelKind::FwdSm90Fp8
            | KernelKind::Fp8Vt => {
                Err(Error::Unsupported(format!("{variant} is not a 16-bit forward kernel, planned for a forward call")))
            }
        }
    }

    /// The backward's main-kernel variant and its three launches on this device.
    pub fn plan_backward(&self, p: &Problem) -> Result<(Variant, BwdLaunches)> {
        self.plan_backward_on(BwdPath::Auto, p)
    }

    /// As [`Runtime::plan_backward`], on a given path. A problem without query rows or without keys
    /// runs the sm80 kernels (only zeros to write; TMA maps cannot describe an empty tensor).
    pub fn plan_backward_on(&self, path: BwdPath, p: &Problem) -> Result<(Variant, BwdLaunches)> {
        let v = self.backward_variant(path, p)?;
        Ok((v, backward_launches(&v, p, self.info.sm_count)))
    }

    /// The main kernel of [`Runtime::plan_backward_on`], without its launches.
    fn backward_variant(&self, path: BwdPath, p: &Problem) -> Result<Variant> {
        let path = if p.seqlen_q == 0 || p.seqlen_k == 0 { BwdPath::Sm80 } else { path };
        Ok(Variant::backward_on(path, self.info.arch, p.head_dim, p.dtype, p.mask, self.info.max_smem_per_block)?
            .with_bwd_ext(&p.window, p.softcap.is_some()))
    }

    /// Attention backward into new gradients: dq in q's layout, dk and dv in k's. `out` and `lse`
    /// are the forward's output and log-sum-exp (fp32 [B, H, Sq]) for the same q, k, v and options.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        q: &DeviceTensor,
        k: &DeviceTensor,
        v: &DeviceTensor,
        out: &DeviceTensor,
        dout: &DeviceTensor,
        lse: &CudaSlice<f32>,
        opts: &BwdOptions,
    ) -> Result<(DeviceTensor, DeviceTensor, DeviceTensor)> {
        let alloc = |desc: TensorDesc| -> Result<DeviceTensor> {
            Ok(DeviceTensor { buf: self.stream.alloc_zeros::<u16>(desc.span().unwrap_or(0).max(1) as usize)?, desc })
        };
        let mut dq = alloc(q.desc.like())?;
        let mut dk = alloc(k.desc.like())?;
        let mut dv = alloc(k.desc.like())?;
        self.backward_into(q, k, v, out, dout, lse, &mut dq, &mut dk, &mut dv, opts)?;
        Ok((dq, dk, dv))
    }

    /// Attention backward into caller-provided gradients (dq like q, dk and dv like k).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_into(
        &self,
        q: &DeviceTensor,
        k: &DeviceTensor,
        v: &DeviceTensor,
        out: &DeviceTensor,
        dout: &DeviceTensor,
        lse: &CudaSlice<f32>,
        dq: &mut DeviceTensor,
        dk: &mut DeviceTensor,
        dv: &mut DeviceTensor,
        opts: &BwdOptions,
    ) -> Result<()> {
        self.backward_into_on(BwdPath::Auto, q, k, v, out, dout, lse, dq, dk, dv, opts)
    }

    /// As [`Runtime::backward_into`], on a given kernel path (`BwdPath::Sm80` runs the portable
    /// kernel on Hopper too: tests and A/B runs).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_into_on(
        &self,
        path: BwdPath,
        q: &DeviceTensor,
        k: &DeviceTensor,
        v: &DeviceTensor,
        out: &DeviceTensor,
        dout: &DeviceTensor,
        lse: &CudaSlice<f32>,
        dq: &mut DeviceTensor,
        dk: &mut DeviceTensor,
        dv: &mut DeviceTensor,
        opts: &BwdOptions,
    ) -> Result<()> {
        for (name, t) in
            [("q", q), ("k", k), ("v", v), ("out", out), ("dout", dout), ("dq", &*dq), ("dk", &*dk), ("dv", &*dv)]
        {
            check_span(name, &t.desc, t.buf.len())?;
        }
        let [b, sq, h, _] = q.desc.shape;
        if lse.len() < b * h * sq {
            return Err(Error::arg("lse", format!("needs {} floats, buffer has {}", b * h * sq, lse.len())));
        }
        let s = &self.stream;
        let (qp, _g1) = q.buf.device_ptr(s);
        let (kp, _g2) = k.buf.device_ptr(s);
        let (vp, _g3) = v.buf.device_ptr(s);
        let (op, _g4) = out.buf.device_ptr(s);
        let (dop, _g5) = dout.buf.device_ptr(s);
        let (lp, _g6) = lse.device_ptr(s);
        let (dqd, dkd, dvd) = (dq.desc, dk.desc, dv.desc);
        let (dqp, _g7) = dq.buf.device_ptr_mut(s);
        let (dkp, _g8) = dk.buf.device_ptr_mut(s);
        let (dvp, _g9) = dv.buf.device_ptr_mut(s);
        let raw = |ptr, desc| RawTensor { ptr, desc };
        // SAFETY: every pointer comes from a live CudaSlice of this context whose length was checked
        // against its description above; the gradients are borrowed mutably, so they alias nothing
        // else; the guards keep cudarc's stream ordering for them.
        unsafe {
            self.backward_on(
                path,
                [raw(qp, q.desc), raw(kp, k.desc), raw(vp, v.desc), raw(op, out.desc), raw(dop, dout.desc)],
                lp,
                0,
                [raw(dqp, dqd), raw(dkp, dkd), raw(dvp, dvd)],
                opts,
                s,
            )
        }
    }

    /// Attention backward on raw device pointers, on a stream owned by the caller (PyTorch's current
    /// stream). `out` and `lse` (B·H·Sq fp32 values laid out [B, H, Sq], natural log) come from the
    /// forward of the same q, k, v, mask and scale; `dout` is the gradient of `out`, and `dlse` (0 for
    /// none, else B·H·Sq fp32 values laid out like `lse`) the loss gradient of the LSE. Writes dq (shaped
    /// like q) and dk, dv (shaped like k). Scratch memory (fp32, about B·H·Sq·(D+2)·4 bytes) is
    /// allocated and freed in stream order on `stream`, so the call may be captured in a CUDA graph.
    ///
    /// # Safety
    /// All pointers must be device allocations of this runtime's device, large enough for their
    /// descriptions; the gradients must not overlap each other or any input, and nothing else may
    /// read or write them until the kernels finish; `stream` must be a live stream of this device
    /// (0 = the legacy default stream).
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn backward_raw(
        &self,
        q: RawTensor,
        k: RawTensor,
        v: RawTensor,
        out: RawTensor,
        dout: RawTensor,
        lse: u64,
        dlse: u64,
        dq: RawTensor,
        dk: RawTensor,
        dv: RawTensor,
        opts: &BwdOptions,
        stream: usize,
    ) -> Result<()> {
        // SAFETY: the caller guarantees the stream is live on this device.
        let s = unsafe { launch::borrow_stream(&self.ctx, stream as sys::CUstream) };
        // SAFETY: forwarded contract.
        unsafe { self.backward_on(BwdPath::Auto, [q, k, v, out, dout], lse, dlse, [dq, dk, dv], opts, &s) }
    }

    /// inputs = [q, k, v, out, dout], grads = [dq, dk, dv].
    #[allow(clippy::too_many_arguments)]
    unsafe fn backward_on(
        &self,
        path: BwdPath,
        inputs: [RawTensor; 5],
        lse: u64,
        dlse: u64,
        grads: [RawTensor; 3],
        opts: &BwdOptions,
        stream: &CudaStream,
    ) -> Result<()> {
        let [q, k, v, out, dout] = inputs;
        let [dq, dk, dv] = grads;
        let p = check_backward(&q.desc, &k.desc, &v.desc, &out.desc, &dout.desc, &dq.desc, &dk.desc, &dv.desc, opts)?;
        // dk and dv exist (and must be written, as zeros) even when no query does.
        let kv_work = p.batch * p.kv_heads * p.seqlen_k > 0;
        let q_work = !p.is_empty();
        if !kv_work && !q_work {
            return Ok(());
        }
        for (name, t) in [("q", &q), ("k", &k), ("v", &v), ("out", &out), ("dout", &dout), ("dq", &dq)] {
            check_gpu_alignment(name, &t.desc, t.ptr)?;
        }
        for (name, t) in [("dk", &dk), ("dv", &dv)] {
            check_gpu_alignment(name, &t.desc, t.ptr)?;
        }
        if q_work && lse == 0 {
            return Err(Error::arg("lse", "null device pointer: the backward needs the forward's LSE"));
        }
        if lse % 4 != 0 {
            return Err(Error::arg("lse", "pointer is not 4-byte aligned"));
        }
        if dlse % 4 != 0 {
            return Err(Error::arg("dlse", "pointer is not 4-byte aligned"));
        }
        let main = self.backward_variant(path, &p)?.bwd_for_mode(opts.deterministic);
        let l = backward_launches(&main, &p, self.info.sm_count);
        let prep = main.bwd_aux(KernelKind::BwdPrep);
        let post = main.bwd_aux(KernelKind::BwdPost);
        let (k_main, k_prep, k_post) = (self.kernel(&main)?, self.kernel(&prep)?, self.kernel(&post)?);
        self.ctx.bind_to_thread()?;

        // Scratch, one stream-ordered allocation: dq_accum | lse2 | dsum | dq_sem | dkv_accum (split
        // GQA groups only: fp32 dK and dV partials per split), each 256-byte aligned.
        let rows = p.batch * p.heads * l.seqlen_q_pad;
        let dkv_bytes =
            if l.kv_splits > 1 { 2 * l.kv_splits * p.batch * p.kv_heads * l.seqlen_k_pad * p.head_dim * 4 } else { 0 };
        // dq_sem: the deterministic mode's turn counters, then the in-kernel zeroing's row counters.
        let counters = p.batch * p.heads * l.num_m_blocks as usize + p.batch * p.kv_heads * l.kv_splits;
        let parts = [rows * p.head_dim * 4, rows * 4, rows * 4, counters * 4, dkv_bytes];
        let mut offsets = [0usize; 5];
        let mut total = 0usize;
        for (o, bytes) in offsets.iter_mut().zip(parts) {
            *o = total;
            total += bytes.div_ceil(256) * 256;
        }
        let scratch = if q_work { Some(StreamScratch::new(total, stream)?) } else { None };
        let at = |i: usize| scratch.as_ref().map_or(0, |s| s.ptr() + offsets[i] as u64);
        let st = |t: &RawTensor| (t.desc.strides[0], t.desc.strides[1], t.desc.strides[2]);
        let ((qb, qs, qh), (kb, ks, kh), (vb, vs, vh)) = (st(&q), st(&k), st(&v));
        let ((ob, os, oh), (dob, dos, doh)) = (st(&out), st(&dout));
        let ((dqb, dqs, dqh), (dkb, dks, dkh), (dvb, dvs, dvh)) = (st(&dq), st(&dk), st(&dv));
        let vis = p.visibility();
        let (scale_log2, softcap_pre) = softmax_factors(&p);
        let params = BwdParams {
            q: q.ptr,
            k: k.ptr,
            v: v.ptr,
            o: out.ptr,
            dout: dout.ptr,
            lse,
            dq: dq.ptr,
            dk: dk.ptr,
            dv: dv.ptr,
            dq_accum: at(0),
            lse2: at(1),
            dsum: at(2),
            dq_sem: at(3),
            q_stride_b: qb,
            q_stride_s: qs,
            q_stride_h: qh,
            k_stride_b: kb,
            k_stride_s: ks,
            k_stride_h: kh,
            v_stride_b: vb,
            v_stride_s: vs,
            v_stride_h: vh,
            o_stride_b: ob,
            o_stride_s: os,
            o_stride_h: oh,
            do_stride_b: dob,
            do_stride_s: dos,
            do_stride_h: doh,
            dq_stride_b: dqb,
            dq_stride_s: dqs,
            dq_stride_h: dqh,
            dk_stride_b: dkb,
            dk_stride_s: dks,
            dk_stride_h: dkh,
            dv_stride_b: dvb,
            dv_stride_s: dvs,
            dv_stride_h: dvh,
            batch: p.batch as i32,
            heads: p.heads as i32,
            kv_heads: p.kv_heads as i32,
            seqlen_q: p.seqlen_q as i32,
            seqlen_k: p.seqlen_k as i32,
            head_dim: p.head_dim as i32,
            causal_offset: clamp_offset(vis.upper_offset(p.seqlen_q, p.seqlen_k).unwrap_or(0)),
            num_m_blocks: l.num_m_blocks as i32,
            num_n_blocks: l.num_n_blocks as i32,
            scale_log2,
            scale: p.scale,
            deterministic: i32::from(opts.deterministic),
            kv_splits: l.kv_splits as i32,
            window_offset_left: clamp_offset(vis.lower_offset(p.seqlen_q, p.seqlen_k).unwrap_or(0)),
            dkv_accum: if l.kv_splits > 1 { at(4) } else { 0 },
            dlse,
            softcap_pre,
            // Both count in dq_sem, which exists only with query work (no scratch without it):
            // the main kernel runs without queries to write zero dK and dV, and then neither.
            // Zeroing in the main kernel also needs it to run; else the prep kernel zeroes all.
            convert_lag: if q_work { l.convert_lag as i32 } else { 0 },
            convert_rows: if q_work { l.convert_rows as i32 } else { 0 },
            zero_lag: if q_work && kv_work { l.zero_lag as i32 } else { 0 },
        };
        // The Hopper kernel's tensor maps first: a tensor TMA rejects returns before anything is queued.
        let p90 = if main.kind == KernelKind::BwdSm90 {
            let (bm, bn) = (main.tile.block_m() as u32, main.tile.block_n() as u32);
            Some(Sm90BwdParams {
                base: params,
                tma_q: tma::encode_bshd("q", q.ptr, &q.desc, bm, 1)?,
                tma_k: tma::encode_bshd("k", k.ptr, &k.desc, bn, 1)?,
                tma_v: tma::encode_bshd("v", v.ptr, &v.desc, bn, 1)?,
                tma_do: tma::encode_bshd("dout", dout.ptr, &dout.desc, bm, 1)?,
                tma_dk: tma::encode_bshd("dk", dk.ptr, &dk.desc, 64, 1)?,
                tma_dv: tma::encode_bshd("dv", dv.ptr, &dv.desc, 64, 1)?,
            })
        } else {
            None
        };
        // Prep fills the scratch that main reads; main fills what post reads (stream order).
        if q_work {
            // SAFETY: descriptions checked by check_backward(); pointer validity and non-overlap are
            // this function's contract; the scratch is freed (in stream order) after the post kernel.
            unsafe { launch::launch_forward(&k_prep.0, stream, &l.prep, &params) }?;
        }
        if kv_work {
            match &p90 {
                // SAFETY: as above; the tensor maps describe the same checked allocations.
                Some(p90) => unsafe { launch::launch_forward(&k_main.0, stream, &l.main, p90) }?,
                // SAFETY: as above.
                None => unsafe { launch::launch_forward(&k_main.0, stream, &l.main, &params) }?,
            }
        }
        if q_work {
            // SAFETY: as above.
            unsafe { launch::launch_forward(&k_post.0, stream, &l.post, &params) }?;
        }
        drop(scratch);
        Ok(())
    }

    pub fn synchronize(&self) -> Result<()> {
        Ok(self.stream.synchronize()?)
    }
}

/// Fails naming `arg` when a buffer of `len` elements is smaller than what `desc`'s shape and
/// strides span (or the span overflows).
pub(crate) fn check_span(arg: &'static str, desc: &TensorDesc, len: usize) -> Result<()> {
    if desc.span().unwrap_or(u64::MAX) > len as u64 {
        return Err(Error::arg(arg, "buffer is smaller than its shape and strides span"));
    }
    Ok(())
}

/// The device address of an optional fp32 LSE output (0 for none), after checking that it holds
/// `rows` floats, with the guard that keeps cudarc's stream ordering for it until the launch is queued.
pub(crate) fn lse_out<'a>(
    lse: Option<&'a mut CudaSlice<f32>>,
    rows: usize,
    s: &'a CudaStream,
) -> Result<(u64, Option<SyncOnDrop<'a>>)> {
    match lse {
        None => Ok((0, None)),
        Some(l) if l.len() < rows => Err(Error::arg("lse", format!("needs {rows} floats, buffer has {}", l.len()))),
        Some(l) => {
            let (p, g) = l.device_ptr_mut(s);
            Ok((p, Some(g)))
        }
    }
}

/// A visibility offset as the kernels take it. Offsets past +-2^29 are as good as unbounded for any
/// sequence the kernels index, and leave the kernels' i + offset (the forward's per-sequence shift,
/// the backward's block-range arithmetic) far from i32 overflow.
pub(crate) fn clamp_offset(x: i64) -> i32 {
    x.clamp(-(1 << 29), 1 << 29) as i32
}

/// (scale_log2, softcap_pre) of the kernels' params: what the softmax multiplies a score by in the
/// log2 domain and, with a softcap, what tanh's argument is: tanh(s · scale / cap) in the kernel,
/// then the softmax multiplies by cap · log2(e).
fn softmax_factors(p: &Problem) -> (f32, f32) {
    match p.softcap {
        Some(cap) => (cap * std::f32::consts::LOG2_E, p.scale / cap),
        None => (p.scale * std::f32::consts::LOG2_E, 0.0),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn fwd_params(
    p: &Problem,
    q: &RawTensor,
    k: &RawTensor,
    v: &RawTensor,
    o: &RawTensor,
    lse: u64,
    num_m_blocks: u32,
    rows_per_head: usize,
) -> FwdParams {
    let st = |t: &RawTensor| (t.desc.strides[0], t.desc.strides[1], t.desc.strides[2]);
    let (qb, qs, qh) = st(q);
    let (kb, ks, kh) = st(k);
    let (vb, vs, vh) = st(v);
    let (ob, os, oh) = st(o);
    let clamp = clamp_offset;
    let vis = p.visibility();
    let (scale_log2, softcap_pre) = softmax_factors(p);
    FwdParams {
        q: q.ptr,
        k: k.ptr,
        v: v.ptr,
        o: o.ptr,
        lse,
        q_stride_b: qb,
        q_stride_s: qs,
        q_stride_h: qh,
        k_stride_b: kb,
        k_stride_s: ks,
        k_stride_h: kh,
        v_stride_b: vb,
        v_stride_s: vs,
        v_stride_h: vh,
        o_stride_b: ob,
        o_stride_s: os,
        o_stride_h: oh,
        batch: p.batch as i32,
        heads: p.heads as i32,
        kv_heads: p.kv_heads as i32,
        seqlen_q: p.seqlen_q as i32,
        seqlen_k: p.seqlen_k as i32,
        head_dim: p.head_dim as i32,
        causal_offset: clamp(vis.upper_offset(p.seqlen_q, p.seqlen_k).unwrap_or(0)),
        num_m_blocks: num_m_blocks as i32,
        scale_log2,
        rows_per_head: rows_per_head as i32,
        window_offset_left: clamp(vis.lower_offset(p.seqlen_q, p.seqlen_k).unwrap_or(0)),
        softcap_pre,
        lse_stride_b: (p.heads * p.seqlen_q) as i64,
        lse_stride_h: p.seqlen_q as i64,
        num_splits: 1,
        ..Default::default()
    }
}
