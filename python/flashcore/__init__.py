"""flashcore: exact fused attention for NVIDIA GPUs, kernels compiled at run time by NVRTC.

Three entry points: `attention(q, k, v)`, `patch_pytorch()` (route `F.scaled_dot_product_attention`
through flashcore) and `FlashCoreAttention` (an `nn.MultiheadAttention` replacement).
"""

from ._native import FlashCoreError, LibraryNotFoundError, UnsupportedError, __version__
from ._runtime import info
from .fp8 import attention_fp8, dequantize_fp8, hadamard_qk, quantize_fp8
from .functional import attention
from .nn import FlashCoreAttention
from .patch import fallback_counts, patch_pytorch, patched, reset_fallback_counts, unpatch_pytorch
from .transformers import register_transformers

__all__ = [
    "FlashCoreAttention",
    "FlashCoreError",
    "LibraryNotFoundError",
    "UnsupportedError",
    "__version__",
    "attention",
    "attention_fp8",
    "dequantize_fp8",
    "fallback_counts",
    "hadamard_qk",
    "info",
    "patch_pytorch",
    "patched",
    "quantize_fp8",
    "register_transformers",
    "reset_fallback_counts",
    "unpatch_pytorch",
]
