//! flashcore: exact fused attention for NVIDIA GPUs.
//!
//! The data path, one module per step:
//! 1. [`api`]: what the caller asks for ([`TensorDesc`], [`AttnOptions`], [`Mask`]) and its checks;
//! 2. [`plan`]: pure decisions (tile table, kernel [`Variant`], grid);
//! 3. [`jit`]: embedded CUDA sources -> NVRTC -> CUBIN, cached on disk;
//! 4. [`launch`]: the device, kernel loading and the launch itself;
//! 5. `kernels/` (CUDA C++, embedded): the kernel stages.
//!
//! [`Runtime`] ties them together on a GPU; [`reference`] is the f64 CPU oracle and CPU path.
//! Building needs no CUDA toolkit: the driver and NVRTC are loaded at run time.

pub mod api;
pub mod error;
pub mod fp8;
pub mod jit;
pub mod launch;
pub mod plan;
pub mod reference;
pub mod runtime;

pub use api::args::{
    supported_page_size, AttnOptions, BwdOptions, DType, KvSpec, LseOut, Mask, Paged, Problem, TensorDesc, Varlen,
    Visibility, Window,
};
pub use cudarc;
pub use error::{Error, Result};
pub use plan::{Arch, BwdPath, TileConfig, Variant};
pub use runtime::{DeviceTensor, ExtPlan, KvArrays, RawTensor, Runtime};
