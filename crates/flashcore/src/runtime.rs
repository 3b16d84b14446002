//! The public GPU entry point: a device, its kernels, and the forward call in its three forms
//! (owned buffers, caller-provided output, raw pointers + stream for the Python layer).

use crate::api::args::{AttnOptions, Problem, TensorDesc};
use crate::api::check::{check, check_gpu_alignment};
use crate::error::{Error, Result};
use crate::jit::{Compiled, Jit};
use crate::launch::params::{FwdParams, Sm90Params};
use crate::launch::{self, tma, DeviceInfo, Kernel};
use crate::plan::{forward_launch, KernelKind, Launch, Variant};
use cudarc::driver::{sys, CudaContext, CudaSlice, CudaStream, DevicePtr, DevicePtrMut};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    /// Tile counters of the persistent sm90 kernel, one per launch in a ring: each launch zeroes its
    /// slot on its own stream first, so launches in flight on different streams never share one.
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
        let v =
            Variant::forward(self.info.arch, p.head_dim, p.dtype, p.mask, p.seqlen_k, self.info.max_smem_per_block)?;
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
        let k = launch::load_kernel(&self.ctx, cubin, v.kind.entry_symbol(), smem)?;
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
            if t.desc.span().unwrap_or(u64::MAX) > t.buf.len() as u64 {
                return Err(Error::arg(name, "buffer is smaller than its shape and strides span"));
            }
        }
        let [b, sq, h, _] = q.desc.shape;
        if let Some(l) = &lse {
            if l.len() < b * h * sq {
                return Err(Error::arg("lse", format!("needs {} floats, buffer has {}", b * h * sq, l.len())));
            }
        }
        let s = &self.stream;
        let (qp, _g1) = q.buf.device_ptr(s);
        let (kp, _g2) = k.buf.device_ptr(s);
        let (vp, _g3) = v.buf.device_ptr(s);
        let odesc = out.desc;
        let (op, _g4) = out.buf.device_ptr_mut(s);
        let (lp, _g5) = match lse {
            Some(l) => {
                let (p, g) = l.device_ptr_mut(s);
                (p, Some(g))
            }
            None => (0, None),
        };
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
        let (variant, launch) = self.plan(&p)?;
        let kernel = self.kernel(&variant)?;
        let params = fwd_params(&p, &q, &k, &v, &out, lse, launch.num_m_blocks);
        self.ctx.bind_to_thread()?;
        match variant.kind {
            KernelKind::FwdSm80 => {
                // SAFETY: descriptions checked by check(); pointer validity is this function's contract.
                unsafe { launch::launch_forward(&kernel.0, stream, &launch, &params) }
            }
            KernelKind::FwdSm90 => {
                let bm = variant.tile.block_m() as u32;
                let bn = variant.tile.block_n() as u32;
                let slot = self.next_counter.fetch_add(1, Ordering::Relaxed) % TILE_COUNTERS;
                let counter = self.tile_counters_ptr + 4 * slot as u64;
                // Tensor maps first: a tensor TMA rejects returns before anything is queued.
                let p90 = Sm90Params {
                    base: params,
                    tile_counter: counter,
                    tma_q: tma::encode_bshd("q", q.ptr, &q.desc, bm)?,
                    tma_k: tma::encode_bshd("k", k.ptr, &k.desc, bn)?,
                    tma_v: tma::encode_bshd("v", v.ptr, &v.desc, bn)?,
                    tma_o: if variant.tma_store {
                        tma::encode_bshd("out", out.ptr, &out.desc, 64)?
                    } else {
                        Default::default()
                    },
                };
                // SAFETY: `counter` is inside the ring, which `self._tile_counters` keeps alive.
                unsafe { launch::zero_u32_async(counter, stream) }?;
                // SAFETY: as above; the tensor maps describe the same checked allocations.
                unsafe { launch::launch_forward(&kernel.0, stream, &launch, &p90) }
            }
        }
    }

    pub fn synchronize(&self) -> Result<()> {
        Ok(self.stream.synchronize()?)
    }
}

fn fwd_params(
    p: &Problem,
    q: &RawTensor,
    k: &RawTensor,
    v: &RawTensor,
    o: &RawTensor,
    lse: u64,
    num_m_blocks: u32,
) -> FwdParams {
    let st = |t: &RawTensor| (t.desc.strides[0], t.desc.strides[1], t.desc.strides[2]);
    let (qb, qs, qh) = st(q);
    let (kb, ks, kh) = st(k);
    let (vb, vs, vh) = st(v);
    let (ob, os, oh) = st(o);
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
        causal_offset: p.mask.causal_offset(p.seqlen_q, p.seqlen_k) as i32,
        num_m_blocks: num_m_blocks as i32,
        scale_log2: p.scale * std::f32::consts::LOG2_E,
        reserved: 0,
    }
}
