"""Process-wide setup shared by the modules: where NVRTC lives, and `info()`."""

import os
import pathlib
import sys
from typing import Any, Dict, Optional

from . import _native

_NVRTC_ENV = "FLASHCORE_NVRTC_PATH"
# Where the pip wheels put libnvrtc: `nvidia-cuda-nvrtc` (CUDA 13) and `nvidia-cuda-nvrtc-cu12`.
_PIP_NVRTC_DIRS = (("cu13", "lib"), ("cuda_nvrtc", "lib"))


def pip_nvrtc_dir() -> Optional[str]:
    """The folder of the installed pip package `nvidia-cuda-nvrtc` holding libnvrtc, if any."""
    try:
        import nvidia  # a namespace package shared by NVIDIA's wheels
    except ImportError:
        return None
    for base in getattr(nvidia, "__path__", []):
        for parts in _PIP_NVRTC_DIRS:
            d = pathlib.Path(base).joinpath(*parts)
            if any(d.glob("libnvrtc.so*")):
                return str(d)
    return None


def ensure_nvrtc_path() -> None:
    """Point the Rust NVRTC discovery at the pip package, unless the user chose a library already.

    Must run before the first CUDA call (the library is loaded once per process). The Rust side
    would also look for the package by asking `python3`, which may be another interpreter.
    """
    if _NVRTC_ENV in os.environ or not sys.platform.startswith("linux"):
        return
    d = pip_nvrtc_dir()
    if d is not None:
        os.environ[_NVRTC_ENV] = d


ensure_nvrtc_path()


def info() -> Dict[str, Any]:
    """Versions, the NVRTC in use, the kernel cache and the CUDA devices flashcore can see.

    Opens CUDA device 0 (when torch sees one) to report its name and arch; never raises for a
    missing GPU or driver: the reason is reported instead.
    """
    import torch

    cuda = torch.cuda.is_available()
    d: Dict[str, Any] = dict(_native.info(0 if cuda else None))
    d["torch"] = torch.__version__
    d["torch_cuda"] = torch.version.cuda
    d["cuda_available"] = cuda
    d["nvrtc_env"] = os.environ.get(_NVRTC_ENV)
    return d
