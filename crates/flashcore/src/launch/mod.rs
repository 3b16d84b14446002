//! (4) The only code that touches a device, a stream or a raw pointer.

pub mod params;
pub mod tma;

use crate::error::{Error, Result};
use crate::plan::{Arch, Launch};
use cudarc::driver::{sys, CudaContext, CudaFunction, CudaModule, CudaStream, LaunchConfig, PushKernelArg};
use std::sync::Arc;

/// What `flashcore info` prints about a GPU.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    pub arch: Arch,
    pub sm_count: u32,
    pub max_smem_per_block: usize,
    pub l2_bytes: usize,
    pub total_mem: usize,
    pub driver_version: i32,
    /// Peak SM clock in kHz.
    pub clock_khz: u32,
}

impl DeviceInfo {
    /// Dense fp16/bf16 tensor-core peak in TFLOP/s at the peak clock: SMs x clock x dense FLOPs per
    /// SM per clock (4096 on Hopper, 2048 on A100-class sm_80, 1024 on sm_86/89, 8192 on Blackwell).
    /// Above the datasheet's figure (which uses the boost clock), so fractions of it are never flattering.
    pub fn peak_tflops(&self) -> f64 {
        let per_clk = match (self.arch.major, self.arch.minor) {
            (9, _) => 4096.0,
            (8, 0) => 2048.0,
            (10, _) => 8192.0,
            _ => 1024.0,
        };
        self.sm_count as f64 * self.clock_khz as f64 * 1e3 * per_clk / 1e12
    }
}

/// Opens device `ordinal` (its primary context, the one PyTorch uses too).
pub fn open_device(ordinal: usize) -> Result<(Arc<CudaContext>, DeviceInfo)> {
    // SAFETY: only dlopens candidate names of libcuda; cudarc would panic if it were missing.
    if !unsafe { sys::is_culib_present() } {
        return Err(Error::LibraryNotFound {
            what: "CUDA driver (libcuda.so.1)",
            hint: "no NVIDIA driver is installed on this machine, so no CUDA device can be used".into(),
        });
    }
    let count = CudaContext::device_count()?;
    if count <= 0 {
        return Err(Error::Unsupported("no CUDA device found".into()));
    }
    if ordinal >= count as usize {
        return Err(Error::arg("device", format!("ordinal {ordinal} but only {count} CUDA device(s)")));
    }
    let ctx = CudaContext::new(ordinal)?;
    let (major, minor) = ctx.compute_capability()?;
    let attr = |a| ctx.attribute(a);
    let mut driver_version = 0;
    // SAFETY: the driver library is loaded (checked above) and the out-pointer is valid.
    unsafe { sys::cuDriverGetVersion(&mut driver_version) }.result()?;
    let info = DeviceInfo {
        ordinal,
        name: ctx.name()?,
        arch: Arch::new(major as u32, minor as u32)?,
        sm_count: attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)? as u32,
        max_smem_per_block: attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?
            as usize,
        l2_bytes: attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)? as usize,
        total_mem: ctx.total_mem()?,
        driver_version,
        clock_khz: attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_CLOCK_RATE)? as u32,
    };
    Ok((ctx, info))
}

/// A loaded kernel function with its shared-memory limit raised.
pub struct Kernel {
    _module: Arc<CudaModule>,
    func: CudaFunction,
    pub num_regs: i32,
    pub local_bytes: i32,
    /// Kernels compiled with cluster dimensions: how many clusters of `block` threads and the
    /// variant's shared memory the device holds at once (a persistent grid needs no more; 0: none,
    /// run the variant without clusters).
    pub max_active_clusters: Option<u32>,
}

/// Loads `symbol` from `cubin`. `cluster_block` (threads per CTA) asks for the occupancy of a
/// kernel compiled with cluster dimensions.
pub fn load_kernel(
    ctx: &Arc<CudaContext>,
    stream: &CudaStream,
    cubin: Vec<u8>,
    symbol: &str,
    smem_bytes: usize,
    cluster_block: Option<u32>,
) -> Result<Kernel> {
    let module = ctx.load_module(cudarc::nvrtc::Ptx::from_binary(cubin))?;
    let func = module.load_function(symbol)?;
    // Above 48 KiB a CTA only gets dynamic shared memory after opting in per function.
    func.set_attribute(sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem_bytes as i32)?;
    let num_regs = func.num_regs()?;
    let local_bytes = func.local_size_bytes()?;
    let max_active_clusters = match cluster_block {
        // The cluster shape is the kernel's own (__cluster_dims__), so the query passes none. A
        // driver that cannot answer is taken as holding none: the caller then runs without clusters.
        Some(threads) => {
            let cfg =
                LaunchConfig { grid_dim: (2, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: smem_bytes as u32 };
            Some(func.occupancy_max_active_clusters(cfg, stream).unwrap_or(0))
        }
        None => None,
    };
    Ok(Kernel { _module: module, func, num_regs, local_bytes, max_active_clusters })
}

/// Launches a kernel whose one argument is a params struct (every flashcore kernel) on `stream`.
///
/// # Safety
/// Every pointer in `p` must be a live device allocation of the context that owns `stream`, large
/// enough for the shapes and strides in `p` (check.rs verified the descriptions, the caller the
/// allocations), and nothing else may write them until the kernel finishes.
pub unsafe fn launch_forward<P: cudarc::driver::DeviceRepr>(
    k: &Kernel,
    stream: &CudaStream,
    launch: &Launch,
    p: &P,
) -> Result<()> {
    let cfg = LaunchConfig { grid_dim: launch.grid, block_dim: launch.block, shared_mem_bytes: launch.smem_bytes };
    let mut b = stream.launch_builder(&k.func);
    b.arg(p);
    // SAFETY: the params struct matches the kernel's signature (one params struct by value); pointer
    // validity is the caller's contract above.
    unsafe { b.launch(cfg) }?;
    Ok(())
}

/// [`launch_forward`] as a programmatic dependent of the kernel queued before it on `stream`
/// (programmatic stream serialization, sm_90+): its CTAs may start once every CTA of that kernel
/// has run `griddepcontrol.launch_dependents` (kernels/common/ptx/griddep.cuh), and wait in
/// `griddepcontrol.wait` for it to finish, so the stream's launch gap between the two overlaps
/// the first one's last wave. Used for the split combine after the Hopper forward (B1 decode: ~2 us
/// a call on the H100, bench/NOTES.md session 13); the backward's main and post kernels gained
/// nothing this way.
///
/// # Safety
/// As [`launch_forward`]; and the kernel runs `ptx::grid_dependency_wait()` before it reads or
/// writes anything the previous kernel on `stream` writes or reads. Only for devices of compute
/// capability 9.0 or newer.
pub unsafe fn launch_dependent<P: cudarc::driver::DeviceRepr>(
    k: &Kernel,
    stream: &CudaStream,
    launch: &Launch,
    p: &P,
) -> Result<()> {
    stream.context().bind_to_thread()?;
    // SAFETY: a plain C union of integers and small structs, all valid when zeroed.
    let mut value: sys::CUlaunchAttributeValue = unsafe { std::mem::zeroed() };
    value.programmaticStreamSerializationAllowed = 1;
    let mut attr = sys::CUlaunchAttribute {
        id: sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION,
        pad: [0; 4],
        value,
    };
    let cfg = sys::CUlaunchConfig {
        gridDimX: launch.grid.0,
        gridDimY: launch.grid.1,
        gridDimZ: launch.grid.2,
        blockDimX: launch.block.0,
        blockDimY: launch.block.1,
        blockDimZ: launch.block.2,
        sharedMemBytes: launch.smem_bytes,
        hStream: stream.cu_stream(),
        attrs: &mut attr,
        numAttrs: 1,
    };
    // One argument, the params struct by value: the driver copies it from this pointer at launch.
    let mut arg = p as *const P as *mut std::ffi::c_void;
    // SAFETY: cfg and attr outlive the call; the function handle belongs to `k`'s live module; the
    // params struct matches the kernel's signature; the rest is the caller's contract above.
    unsafe { sys::cuLaunchKernelEx(&cfg, k.func.cu_function(), &mut arg, std::ptr::null_mut()) }.result()?;
    Ok(())
}

/// Wraps a stream owned by someone else (PyTorch's current stream).
///
/// # Safety
/// `raw` must be a live stream of `ctx`'s device and outlive every use of the returned wrapper.
pub unsafe fn borrow_stream(ctx: &Arc<CudaContext>, raw: sys::CUstream) -> Arc<CudaStream> {
    // SAFETY: forwarded contract.
    unsafe { ctx.wrap_borrowed_stream(raw) }
}

/// Device memory allocated and freed in stream order on one stream (cuMemAllocAsync, and
/// cuMemFreeAsync on drop): the backward's fp32 scratch. Freed after the work queued before the
/// drop, so kernels that use it may still be in flight; safe with launches on other streams (each
/// call has its own) and inside CUDA-graph capture (allocation and free become graph nodes), and it
/// puts no cudarc event bookkeeping on the caller's stream.
pub struct StreamScratch<'a> {
    ptr: u64,
    stream: &'a CudaStream,
}

impl<'a> StreamScratch<'a> {
    /// `bytes` (> 0) of uninitialised device memory, usable by work queued on `stream` from now on.
    /// The stream's context must be current on this thread.
    pub fn new(bytes: usize, stream: &'a CudaStream) -> Result<StreamScratch<'a>> {
        // SAFETY: the stream is live for 'a (borrowed); the pointer is freed on the same stream in Drop.
        let ptr = unsafe { cudarc::driver::result::malloc_async(stream.cu_stream(), bytes.max(1)) }?;
        Ok(StreamScratch { ptr, stream })
    }

    pub fn ptr(&self) -> u64 {
        self.ptr
    }
}

impl Drop for StreamScratch<'_> {
    fn drop(&mut self) {
        // SAFETY: ptr came from malloc_async on this stream and is freed once; the free is ordered
        // after every kernel queued on the stream that reads it. A failure here (context torn down)
        // leaves nothing to clean up, so it is ignored.
        let _ = unsafe { cudarc::driver::result::free_async(self.ptr, self.stream.cu_stream()) };
    }
}
