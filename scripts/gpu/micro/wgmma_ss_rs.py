"""Runs wgmma_ss_rs.cu's variants on the GPU: NVRTC (pip's nvidia-cuda-nvrtc) + the driver API via
ctypes, torch for memory and events. Prints achieved TFLOP/s per (dtype, N, SS/RS, warpgroups)."""
import ctypes, glob, os, sys
import torch

here = os.path.dirname(os.path.abspath(__file__))
libdir = os.environ.get("FLASHCORE_NVRTC_PATH") or glob.glob(
    os.path.join(os.path.dirname(torch.__file__), "..", "nvidia", "cu13", "lib"))[0]
ctypes.CDLL(glob.glob(os.path.join(libdir, "libnvrtc-builtins.so*"))[0], mode=ctypes.RTLD_GLOBAL)
nvrtc = ctypes.CDLL(glob.glob(os.path.join(libdir, "libnvrtc.so*"))[0])
src = open(os.path.join(here, "wgmma_ss_rs.cu")).read().replace(
    '#include "../../../kernels/common/ptx/wgmma.cuh"', '#include "kernels/common/ptx/wgmma.cuh"')
root = os.path.abspath(os.path.join(here, "..", "..", ".."))


def compile_(defs):
    p = ctypes.c_void_p()
    assert nvrtc.nvrtcCreateProgram(ctypes.byref(p), src.encode(), b"mb.cu", 0, None, None) == 0
    opts = [b"-arch=sm_90a", b"-std=c++17", ("-I" + root).encode()] + [f"-D{k}={v}".encode() for k, v in defs.items()]
    arr = (ctypes.c_char_p * len(opts))(*opts)
    r = nvrtc.nvrtcCompileProgram(p, len(opts), arr)
    sz = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(p, ctypes.byref(sz))
    log = ctypes.create_string_buffer(sz.value)
    nvrtc.nvrtcGetProgramLog(p, log)
    if r != 0:
        sys.exit(log.value.decode())
    nvrtc.nvrtcGetCUBINSize(p, ctypes.byref(sz))
    b = ctypes.create_string_buffer(sz.value)
    nvrtc.nvrtcGetCUBIN(p, b)
    return b.raw


def run(defs, iters=4000):
    cuda = ctypes.CDLL("libcuda.so.1")
    torch.cuda.init()
    torch.zeros(1, device="cuda")
    cubin = compile_(defs)
    mod, fn = ctypes.c_void_p(), ctypes.c_void_p()
    assert cuda.cuModuleLoadData(ctypes.byref(mod), cubin) == 0
    assert cuda.cuModuleGetFunction(ctypes.byref(fn), mod, b"mb") == 0
    smem = 200 * 1024
    assert cuda.cuFuncSetAttribute(fn, 8, smem) == 0  # MAX_DYNAMIC_SHARED_SIZE_BYTES
    wg = defs["MB_WG"]
    src_t = torch.randint(0, 2**31 - 1, (1 << 16,), dtype=torch.int32, device="cuda")
    out = torch.empty(132 * 128 * wg, dtype=torch.float32, device="cuda")
    it = ctypes.c_int(iters)
    a1, a2 = ctypes.c_void_p(src_t.data_ptr()), ctypes.c_void_p(out.data_ptr())
    args = (ctypes.c_void_p * 3)(ctypes.addressof(a1), ctypes.addressof(a2), ctypes.addressof(it))
    stream = torch.cuda.current_stream().cuda_stream
    launch = lambda: cuda.cuLaunchKernel(fn, 132, 1, 1, 128 * wg, 1, 1, smem, ctypes.c_void_p(stream), args, None)
    launch(); torch.cuda.synchronize()
    ts = []
    for _ in range(5):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record(); assert launch() == 0; e1.record(); torch.cuda.synchronize()
        ts.append(e0.elapsed_time(e1))
    ms = sorted(ts)[2]
    k = 128  # reduction length per group: 8 k16 steps (bf16) or 4 k32 steps (e4m3)
    flops = 132 * wg * iters * 2 * 2 * 64 * defs["MB_N"] * k
    return flops / ms / 1e9


if __name__ == "__main__":
    for fp8 in (0, 1):
        for n in (64, 128):
            for wg in (2, 3):
                row = []
                for rs in (0, 1):
                    row.append(run({"MB_N": n, "MB_RS": rs, "MB_WG": wg, "MB_FP8": fp8}))
                print(f"{'e4m3' if fp8 else 'bf16'} N={n} warpgroups={wg}: SS {row[0]:.0f} TF/s, RS {row[1]:.0f} TF/s, RS/SS {row[1]/row[0]:.3f}", flush=True)
