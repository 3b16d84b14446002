"""Typed stub of the Rust extension module `flashcore._native` (crates/flashcore-py).

Private: tensors cross as `(data_ptr, shape, strides)` in the logical [B, S, H, D] order (element
strides), and the caller (flashcore._ops) guarantees the pointers are live for the call.
"""

from typing import Any, Dict, Optional, Tuple

_Tensor4 = Tuple[int, Tuple[int, int, int, int], Tuple[int, int, int, int]]

__all__ = [
    "__version__",
    "forward_cpu",
    "forward_cuda",
    "backward_cuda",
    "forward_ext_cuda",
    "merge_cuda",
    "supported_page_size",
    "forward_fp8_cuda",
    "supported_head_dim",
    "supported_backward_head_dim",
    "info",
    "FlashCoreError",
    "LibraryNotFoundError",
    "UnsupportedError",
]
__version__: str

class FlashCoreError(RuntimeError): ...
class LibraryNotFoundError(FlashCoreError): ...
class UnsupportedError(ValueError): ...

def forward_cpu(
    dtype: str, q: _Tensor4, k: _Tensor4, v: _Tensor4, out: int, lse: int, mask: str, scale: float
) -> None: ...
def forward_cuda(
    device: int,
    stream: int,
    dtype: str,
    q: _Tensor4,
    k: _Tensor4,
    v: _Tensor4,
    out: _Tensor4,
    lse: int,
    mask: str,
    scale: Optional[float],
) -> None: ...
def backward_cuda(
    device: int,
    stream: int,
    dtype: str,
    q: _Tensor4,
    k: _Tensor4,
    v: _Tensor4,
    out: _Tensor4,
    dout: _Tensor4,
    lse: int,
    dq: _Tensor4,
    dk: _Tensor4,
    dv: _Tensor4,
    mask: str,
    scale: Optional[float],
    deterministic: bool,
    window_left: int = ...,
    window_right: int = ...,
    softcap: Optional[float] = ...,
    dlse: int = ...,
) -> None: ...
def forward_ext_cuda(
    device: int,
    stream: int,
    dtype: str,
    q: _Tensor4,
    k: _Tensor4,
    v: _Tensor4,
    out: _Tensor4,
    lse: int,
    lse_strides: Tuple[int, int],
    mask: str,
    scale: Optional[float],
    window_left: int,
    window_right: int,
    softcap: float,
    cu_seqlens_q: int,
    cu_seqlens_k: int,
    seqused_k: int,
    batch: int,
    max_seqlen_q: int,
    max_seqlen_k: int,
    block_table: int,
    block_table_stride: int,
    page_size: int,
    num_splits: int,
    sinks: int = ...,
) -> None: ...
def merge_cuda(
    device: int,
    stream: int,
    dtype: str,
    o_a: _Tensor4,
    lse_a: int,
    o_b: _Tensor4,
    lse_b: int,
    out: _Tensor4,
    lse_out: int,
) -> None: ...
def supported_page_size(p: int) -> bool: ...
def forward_fp8_cuda(
    device: int,
    stream: int,
    out_dtype: str,
    q: _Tensor4,
    k: _Tensor4,
    v: _Tensor4,
    q_descale: Tuple[int, str],
    k_descale: Tuple[int, str],
    v_descale: Tuple[int, str],
    out: _Tensor4,
    lse: int,
    mask: str,
    scale: Optional[float],
) -> None: ...
def supported_head_dim(d: int) -> bool: ...
def supported_backward_head_dim(d: int) -> bool: ...
def info(open_device: Optional[int] = None) -> Dict[str, Any]: ...
