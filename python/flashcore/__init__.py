"""flashcore: exact fused attention for NVIDIA GPUs, kernels compiled at run time by NVRTC.

Entry points: `attention(q, k, v)`, `patch_pytorch()` (route `F.scaled_dot_product_attention`
through flashcore) and `FlashCoreAttention` (an `nn.MultiheadAttention` replacement); for
inference, `attention_varlen` (packed sequences), `attention_with_kvcache` (decode against a
contiguous or paged KV cache) and `merge` (combine two partial attentions by their LSEs).
"""

from ._native import FlashCoreError, LibraryNotFoundError, UnsupportedError, __version__
from ._runtime import info
from .fp8 import attention_fp8, dequantize_fp8, hadamard_qk, quantize_fp8
from .functional import attention, attention_varlen, attention_with_kvcache, merge
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
    "attention_varlen",
    "attention_with_kvcache",
    "attention_fp8",
    "dequantize_fp8",
    "fallback_counts",
    "hadamard_qk",
    "info",
    "merge",
    "patch_pytorch",
    "patched",
    "quantize_fp8",
    "register_transformers",
    "reset_fallback_counts",
    "unpatch_pytorch",
]
