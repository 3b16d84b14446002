//! TMA tensor maps: a safe builder over `cuTensorMapEncodeTiled` for our [B, S, H, D] tensors.

use crate::api::args::TensorDesc;
use crate::error::{Error, Result};
use cudarc::driver::sys;

/// The driver's 128-byte tensor map, as the kernel's `TmaDesc` (kernels/common/ptx/tma.cuh).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TensorMap(pub [u64; 16]);

const _: () = assert!(std::mem::size_of::<TensorMap>() == 128);
const _: () = assert!(std::mem::size_of::<TensorMap>() == std::mem::size_of::<sys::CUtensorMap>());

/// A 4-d map over a 16-bit (or e4m3) tensor at `ptr` described by `desc` ([B, S, H, D], element
/// strides), with dims ordered (D, S, H, B) innermost first, a box of 128 bytes of head dim (64
/// 16-bit values, 128 e4m3) by `box_rows` sequence rows by `box_heads` heads, and the 128-byte
/// swizzle the wgmma descriptors expect. Rows past the end of the sequence read as zeros (and are
/// dropped by stores).
pub fn encode_bshd(arg: &'static str, ptr: u64, desc: &TensorDesc, box_rows: u32, box_heads: u32) -> Result<TensorMap> {
    let [b, s, h, d] = desc.shape;
    let dims: [u64; 4] = [d as u64, s as u64, h as u64, b as u64];
    let esize = desc.dtype.size_bytes() as u64;
    // A size-1 dim's stride is never used; TMA still wants it 16-byte aligned and non-zero.
    let safe = |n: usize, st: i64| -> u64 {
        if n <= 1 {
            16
        } else {
            st as u64 * esize
        }
    };
    let strides: [u64; 3] = [safe(s, desc.strides[1]), safe(h, desc.strides[2]), safe(b, desc.strides[0])];
    if strides.iter().any(|x| x % 16 != 0 || *x >= 1 << 40) {
        return Err(Error::arg(
            arg,
            format!("strides {:?} are not TMA-compatible (16-byte multiples below 2^40)", desc.strides),
        ));
    }
    let boxes: [u32; 4] = [128 / esize as u32, box_rows, box_heads, 1];
    encode(arg, ptr, esize, dims, strides, boxes)
}

/// The FP8 forward's transposed V: e4m3 [B, Hkv, D, seqlen_pad] contiguous (kernels/sm90/fp8_vt.cu),
/// dims (key, D, Hkv, B) innermost first, a box of 128 keys by all D rows.
pub fn encode_vt(ptr: u64, batch: usize, kv_heads: usize, head_dim: usize, seqlen_pad: usize) -> Result<TensorMap> {
    let dims: [u64; 4] = [seqlen_pad as u64, head_dim as u64, kv_heads as u64, batch as u64];
    let row = seqlen_pad as u64;
    let strides: [u64; 3] = [row, row * head_dim as u64, row * (head_dim * kv_heads) as u64];
    encode("v", ptr, 1, dims, strides, [128, head_dim as u32, 1, 1])
}

fn encode(
    arg: &'static str,
    ptr: u64,
    esize: u64,
    dims: [u64; 4],
    strides: [u64; 3],
    boxes: [u32; 4],
) -> Result<TensorMap> {
    let elem: [u32; 4] = [1; 4];
    let dtype = if esize == 1 {
        sys::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_UINT8
    } else {
        sys::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_UINT16
    };
    let mut map = sys::CUtensorMap { opaque: [0; 16] };
    // SAFETY: every array has the rank (4, or 3 for strides) the call reads; `ptr` is a device
    // address the caller vouches for (the runtime's raw-pointer contract); encoding only reads host
    // memory and writes `map`.
    let r = unsafe {
        sys::cuTensorMapEncodeTiled(
            &mut map,
            dtype,
            4,
            ptr as *mut std::ffi::c_void,
            dims.as_ptr(),
            strides.as_ptr(),
            boxes.as_ptr(),
            elem.as_ptr(),
            sys::CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
            sys::CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
            sys::CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            sys::CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
        )
    };
    r.result().map_err(|e| Error::arg(arg, format!("cuTensorMapEncodeTiled rejected the tensor: {e:?}")))?;
    Ok(TensorMap(map.opaque))
}
