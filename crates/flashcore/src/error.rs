//! The one error type of the crate. Bad input names the argument; compile failures keep the evidence.

use cudarc::driver::DriverError;

/// Every failure flashcore reports. No public function panics on bad input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument is invalid; `arg` is its name as the caller knows it (`q`, `k`, `scale`...).
    #[error("invalid argument `{arg}`: {why}")]
    InvalidArg { arg: &'static str, why: String },
    /// The request is valid attention but no kernel serves it (yet).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A CUDA library (driver or NVRTC) could not be found or loaded.
    #[error("{what} not found: {hint}")]
    LibraryNotFound { what: &'static str, hint: String },
    /// NVRTC rejected a kernel variant.
    #[error("NVRTC failed to compile {variant} with options {options:?}:\n{log}")]
    Compile { variant: String, options: Vec<String>, log: String },
    /// Any other NVRTC failure.
    #[error("NVRTC: {0}")]
    Nvrtc(String),
    /// A CUDA driver call failed.
    #[error("CUDA driver: {0}")]
    Driver(#[from] DriverError),
    /// The on-disk kernel cache could not be read or written.
    #[error("kernel cache: {0}")]
    Cache(String),
}

impl Error {
    pub(crate) fn arg(arg: &'static str, why: impl Into<String>) -> Self {
        Error::InvalidArg { arg, why: why.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
