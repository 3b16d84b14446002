//! `flashcore._native`: the private extension module under the `flashcore` Python package.
//!
//! Small on purpose: tensors come in as pointers, shapes, strides and a stream (see [`intake`]), and
//! everything torch-specific (allocation, autograd, custom ops) lives in Python. Errors become Python
//! exceptions in one place ([`error`]).

mod error;
mod intake;
mod runtimes;

use flashcore::jit::{ensure_loaded, DiskCache};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Whether the CUDA forward kernel serves head dim `d` (multiples of 16 from 16 to 256).
#[pyfunction]
fn supported_head_dim(d: usize) -> bool {
    flashcore::plan::tiles::supported_head_dim(d)
}

/// Whether the CUDA backward kernel serves head dim `d` (multiples of 16 from 16 to 128).
#[pyfunction]
fn supported_backward_head_dim(d: usize) -> bool {
    flashcore::plan::backward::supported_bwd_head_dim(d)
}

/// Whether the paged K/V path serves pages of `p` tokens (powers of two from 16 to 256).
#[pyfunction]
fn supported_page_size(p: usize) -> bool {
    flashcore::supported_page_size(p)
}

/// Where NVRTC was found (or why not), the kernel cache, and each device opened so far.
/// With `open_device`, device `open_device` is opened first (so its name and arch are listed).
#[pyfunction]
#[pyo3(signature = (open_device = None))]
fn info(py: Python<'_>, open_device: Option<usize>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("version", env!("CARGO_PKG_VERSION"))?;
    if let Some(ordinal) = open_device {
        if let Err(e) = runtimes::get(py, ordinal) {
            d.set_item("device_error", e.value(py).str()?.to_string())?;
        }
    }
    match py.detach(ensure_loaded) {
        Ok(n) => {
            let nv = PyDict::new(py);
            nv.set_item("version", format!("{}.{}", n.version.0, n.version.1))?;
            nv.set_item("path", n.path.as_ref().map(|p| p.display().to_string()))?;
            nv.set_item("found_by", &n.found_by)?;
            d.set_item("nvrtc", nv)?;
        }
        Err(e) => d.set_item("nvrtc", e.to_string())?,
    }
    let cache = DiskCache::from_env();
    d.set_item("kernel_cache", cache.dir().display().to_string())?;
    d.set_item("kernel_cache_entries", cache.entries().len())?;
    let devices = pyo3::types::PyList::empty(py);
    for (ordinal, rt) in runtimes::opened() {
        let i = rt.info();
        let dev = PyDict::new(py);
        dev.set_item("ordinal", ordinal)?;
        dev.set_item("name", &i.name)?;
        dev.set_item("arch", i.arch.to_string())?;
        dev.set_item("sm_count", i.sm_count)?;
        dev.set_item("driver_version", i.driver_version)?;
        dev.set_item("peak_tflops", i.peak_tflops())?;
        devices.append(dev)?;
    }
    d.set_item("devices", devices)?;
    Ok(d)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(intake::forward_cpu, m)?)?;
    m.add_function(wrap_pyfunction!(intake::forward_cuda, m)?)?;
    m.add_function(wrap_pyfunction!(intake::backward_cuda, m)?)?;
    m.add_function(wrap_pyfunction!(intake::forward_ext_cuda, m)?)?;
    m.add_function(wrap_pyfunction!(intake::merge_cuda, m)?)?;
    m.add_function(wrap_pyfunction!(supported_page_size, m)?)?;
    m.add_function(wrap_pyfunction!(intake::forward_fp8_cuda, m)?)?;
    m.add_function(wrap_pyfunction!(supported_head_dim, m)?)?;
    m.add_function(wrap_pyfunction!(supported_backward_head_dim, m)?)?;
    m.add_function(wrap_pyfunction!(info, m)?)?;
    error::register(m)?;
    Ok(())
}
