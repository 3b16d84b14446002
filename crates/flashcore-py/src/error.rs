//! The one place where flashcore's Rust errors become Python exceptions.
//!
//! - `InvalidArg { arg, why }` -> `ValueError("invalid argument `arg`: why")`, with `.arg` set to the name;
//! - `Unsupported` -> `flashcore.UnsupportedError` (a `ValueError`): valid attention that no kernel serves;
//! - a missing driver or NVRTC -> `flashcore.LibraryNotFoundError`, a `FlashCoreError`;
//! - NVRTC compile failures, driver errors and cache errors -> `flashcore.FlashCoreError` (a `RuntimeError`)
//!   whose message keeps the evidence (variant, options, compiler log).

use flashcore::Error;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

pyo3::create_exception!(flashcore, FlashCoreError, PyRuntimeError, "A CUDA, NVRTC or kernel-cache failure.");
pyo3::create_exception!(
    flashcore,
    LibraryNotFoundError,
    FlashCoreError,
    "The CUDA driver or NVRTC could not be found or loaded."
);
pyo3::create_exception!(flashcore, UnsupportedError, PyValueError, "Valid attention that no flashcore kernel serves.");

/// Converts a flashcore error into the Python exception documented above.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::InvalidArg { arg, .. } => {
            let err = PyValueError::new_err(msg);
            // `.arg` lets callers (and tests) see which argument was at fault without parsing text.
            let _ = err.value(py).setattr("arg", arg);
            err
        }
        Error::Unsupported(_) => UnsupportedError::new_err(msg),
        Error::LibraryNotFound { .. } => LibraryNotFoundError::new_err(msg),
        Error::Compile { .. } | Error::Nvrtc(_) | Error::Driver(_) | Error::Cache(_) => FlashCoreError::new_err(msg),
    }
}

/// `ValueError` naming an argument, for checks made in the binding itself.
pub fn invalid_arg(py: Python<'_>, arg: &'static str, why: impl Into<String>) -> PyErr {
    to_py(py, Error::InvalidArg { arg, why: why.into() })
}

/// Registers the exception types on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("FlashCoreError", py.get_type::<FlashCoreError>())?;
    m.add("LibraryNotFoundError", py.get_type::<LibraryNotFoundError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    Ok(())
}
