//! The FP8 forward's device entry points (the codec, quantizers and checks live in crate::fp8):
//! upload of quantized tensors, planning, and the launches of the V transpose and the FP8 kernel.

use crate::api::args::{AttnOptions, DType, Problem, TensorDesc};
use crate::error::{Error, Result};
use crate::fp8::{check_fp8, check_fp8_alignment, Descale, Fp8DeviceTensor, Granularity, Quantized};
use crate::launch::params::{Sm90Params, VtParams};
use crate::launch::{self, tma, StreamScratch};
use crate::plan::{forward_launch, rows_per_head, Arch, Launch, Variant};
use crate::runtime::{check_span, fwd_params, lse_out, DeviceTensor, RawTensor, Runtime};
use cudarc::driver::{sys, CudaSlice, CudaStream, DevicePtr, DevicePtrMut};

impl Runtime {
    /// Uploads a host-quantized tensor.
    pub fn upload_fp8(&self, x: &Quantized) -> Result<Fp8DeviceTensor> {
        let [b, s, h, d] = x.shape;
        let s_ = self.stream();
        Ok(Fp8DeviceTensor {
            buf: s_.clone_htod(&x.bytes)?,
            desc: TensorDesc::contiguous_bshd(b, s, h, d, DType::E4m3),
            descale: s_.clone_htod(&x.descale)?,
            granularity: x.granularity,
        })
    }

    /// The FP8 forward variant for a problem (whose dtype is the output's); `kv_block_quant`: k or v
    /// has a descale per block of keys.
    pub fn plan_fp8(&self, p: &Problem, kv_block_quant: bool) -> Result<(Variant, Launch)> {
        if self.info().arch != Arch::SM90 {
            return Err(Error::Unsupported(format!(
                "the FP8 forward needs sm_90 (Hopper), this GPU is {}",
                self.info().arch
            )));
        }
        let v = Variant::fp8_forward(
            p.head_dim,
            p.dtype,
            p.mask,
            p.seqlen_k,
            kv_block_quant,
            self.info().max_smem_per_block,
        )?;
        let v = v.with_vt_smem(p);
        Ok((v, forward_launch(&v, p, self.info().sm_count)))
    }

    /// FP8 attention forward into caller-provided buffers on the runtime's stream. `lse`, when
    /// given, holds B·H·Sq floats.
    pub fn forward_fp8_into(
        &self,
        q: &Fp8DeviceTensor,
        k: &Fp8DeviceTensor,
        v: &Fp8DeviceTensor,
        out: &mut DeviceTensor,
        lse: Option<&mut CudaSlice<f32>>,
        opts: &AttnOptions,
    ) -> Result<()> {
        for (name, t) in [("q", q), ("k", k), ("v", v)] {
            check_span(name, &t.desc, t.buf.len())?;
            let [b, s, h, _] = t.desc.shape;
            if t.descale.len() < t.granularity.len(b, s, h) {
                return Err(Error::arg(name, format!("needs {} descale factors", t.granularity.len(b, s, h))));
            }
        }
        check_span("out", &out.desc, out.buf.len())?;
        let [b, sq, h, _] = q.desc.shape;
        let s = self.stream();
        let (lp, _g8) = lse_out(lse, b * h * sq, s)?;
        let (qp, _g1) = q.buf.device_ptr(s);
        let (kp, _g2) = k.buf.device_ptr(s);
        let (vp, _g3) = v.buf.device_ptr(s);
        let (qd, _g4) = q.descale.device_ptr(s);
        let (kd, _g5) = k.descale.device_ptr(s);
        let (vd, _g6) = v.descale.device_ptr(s);
        let odesc = out.desc;
        let (op, _g7) = out.buf.device_ptr_mut(s);
        let raw = |ptr, desc| RawTensor { ptr, desc };
        let descales = [
            Descale { ptr: qd, granularity: q.granularity },
            Descale { ptr: kd, granularity: k.granularity },
            Descale { ptr: vd, granularity: v.granularity },
        ];
        // SAFETY: every pointer comes from a live CudaSlice of this context whose length was checked
        // above; the guards keep cudarc's stream ordering for them.
        unsafe {
            self.forward_fp8_on(
                raw(qp, q.desc),
                raw(kp, k.desc),
                raw(vp, v.desc),
                descales,
                raw(op, odesc),
                lp,
                opts,
                s,
            )
        }
    }

    /// FP8 attention forward on raw device pointers, on a stream owned by the caller. q, k, v are
    /// e4m3 ([B, S, H, D] descriptions with dtype [`DType::E4m3`]), `out` bf16 or fp16 like q,
    /// `lse` 0 or B·H·Sq fp32 values [B, H, Sq]. A scratch copy of V transposed (B·Hkv·D·Sk bytes,
    /// rounded up) is allocated and freed in stream order.
    ///
    /// # Safety
    /// All pointers, descale factor arrays included (as many fp32 values as their granularity
    /// needs), must be device allocations of this runtime's device, large enough for their
    /// descriptions, not written by anything else until the kernels finish; `stream` must be a live
    /// stream of this device (0 = the legacy default stream).
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn forward_fp8_raw(
        &self,
        q: RawTensor,
        k: RawTensor,
        v: RawTensor,
        descales: [Descale; 3],
        out: RawTensor,
        lse: u64,
        opts: &AttnOptions,
        stream: usize,
    ) -> Result<()> {
        // SAFETY: the caller guarantees the stream is live on this device.
        let s = unsafe { launch::borrow_stream(self.context(), stream as sys::CUstream) };
        // SAFETY: forwarded contract.
        unsafe { self.forward_fp8_on(q, k, v, descales, out, lse, opts, &s) }
    }

    #[allow(clippy::too_many_arguments)]
    unsafe fn forward_fp8_on(
        &self,
        q: RawTensor,
        k: RawTensor,
        v: RawTensor,
        descales: [Descale; 3],
        out: RawTensor,
        lse: u64,
        opts: &AttnOptions,
        stream: &CudaStream,
    ) -> Result<()> {
        let p = check_fp8(&q.desc, &k.desc, &v.desc, &out.desc, &descales, opts)?;
        if p.is_empty() {
            return Ok(());
        }
        for (name, t) in [("q", &q), ("k", &k), ("v", &v)] {
            check_fp8_alignment(name, t)?;
        }
        crate::api::check::check_gpu_alignment("out", &out.desc, out.ptr)?;
        if lse % 4 != 0 {
            return Err(Error::arg("lse", "pointer is not 4-byte aligned"));
        }
        let kv_block_quant = descales[1..].iter().any(|d| d.granularity == Granularity::Block);
        let (variant, _) = self.plan_fp8(&p, kv_block_quant)?;
        let vt_variant = variant.fp8_vt();
        let variant = variant.with_sum_mma(lse != 0);
        let launch = forward_launch(&variant, &p, self.info().sm_count);
        let kernel = self.kernel(&variant)?;
        let rows = rows_per_head(&variant, &p);
        let mut params = fwd_params(&p, &q, &k, &v, &out, lse, launch.num_m_blocks, rows);
        let [qd, kd, vd] = descales;
        let (qsb, qsh, qsk) = qd.granularity.strides(p.seqlen_q, p.heads);
        let (ksb, ksh, ksk) = kd.granularity.strides(p.seqlen_k, p.kv_heads);
        let (vsb, vsh, vsk) = vd.granularity.strides(p.seqlen_k, p.kv_heads);
        params.q_descale = qd.ptr;
        params.k_descale = kd.ptr;
        params.v_descale = vd.ptr;
        (params.q_descale_stride_b, params.q_descale_stride_h, params.q_descale_stride_blk) = (qsb, qsh, qsk);
        (params.k_descale_stride_b, params.k_descale_stride_h, params.k_descale_stride_blk) = (ksb, ksh, ksk);
        (params.v_descale_stride_b, params.v_descale_stride_h, params.v_descale_stride_blk) = (vsb, vsh, vsk);
        self.context().bind_to_thread()?;

        let bm = variant.tile.block_m() as u32;
        let bn = variant.tile.block_n() as u32;
        let tma_q = tma::encode_bshd("q", q.ptr, &q.desc, rows as u32, bm / rows as u32)?;
        let tma_k = tma::encode_bshd("k", k.ptr, &k.desc, bn, 1)?;
        // V as K, transposed in shared memory by the kernel (sm90/transpose.cuh); or first
        // transposed into stream-ordered scratch, keys padded to a multiple of 32 (fp8_vt.cu), which
        // lives until the forward is launched behind it.
        let mut _scratch = None;
        let tma_v = if variant.fp8_vt_smem() {
            tma::encode_bshd("v", v.ptr, &v.desc, bn, 1)?
        } else {
            let vt_kernel = self.kernel(&vt_variant)?;
            let sk_pad = p.seqlen_k.next_multiple_of(32);
            let vt = StreamScratch::new(p.batch * p.kv_heads * p.head_dim * sk_pad, stream)?;
            let vtp = VtParams {
                v: v.ptr,
                vt: vt.ptr(),
                v_stride_b: v.desc.strides[0],
                v_stride_s: v.desc.strides[1],
                v_stride_h: v.desc.strides[2],
                batch: p.batch as i32,
                kv_heads: p.kv_heads as i32,
                seqlen_k: p.seqlen_k as i32,
                seqlen_pad: sk_pad as i32,
                head_dim: p.head_dim as i32,
                reserved: 0,
            };
            let vt_launch = Launch {
                grid: (sk_pad.div_ceil(64) as u32, p.kv_heads as u32, p.batch as u32),
                block: (crate::plan::variant::FP8_VT_THREADS as u32, 1, 1),
                smem_bytes: 0,
                num_m_blocks: 0,
            };
            let map = tma::encode_vt(vt.ptr(), p.batch, p.kv_heads, p.head_dim, sk_pad)?;
            // SAFETY: v was checked against its description; vt holds B·Hkv·D·sk_pad bytes.
            unsafe { launch::launch_forward(&vt_kernel.0, stream, &vt_launch, &vtp) }?;
            _scratch = Some(vt);
            map
        };
        let p90 = Sm90Params {
            base: params,
            tile_counter: self.tile_counter(),
            tma_q,
            tma_k,
            tma_v,
            tma_o: Default::default(),
            // Dense FP8 calls only (no FC_INFER): the clamps' bounds are unused.
            total_q: 0,
            total_k: 0,
        };
        // SAFETY: descriptions checked above; pointer validity is this function's contract; the
        // scratch, if any, is freed in stream order after this launch.
        unsafe { launch::launch_forward(&kernel.0, stream, &launch, &p90) }
    }
}
