//! (3) Source -> CUBIN: flatten the embedded sources, compile with NVRTC, cache on disk.

pub mod cache;
pub mod discover;
pub mod nvrtc;
pub mod sources;

use crate::error::Result;
use crate::plan::Variant;
use std::time::Instant;

pub use cache::DiskCache;
pub use nvrtc::{ensure_loaded, NvrtcInfo};

/// A CUBIN ready to load, and how it was obtained.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub cubin: Vec<u8>,
    pub from_disk_cache: bool,
    pub seconds: f64,
    /// Cache file name: `<variant>-<key prefix>`.
    pub cache_name: String,
    /// NVRTC's log (warnings), empty when clean.
    pub log: String,
}

/// Compiles variants, going through the disk cache. Needs NVRTC, not a GPU.
#[derive(Clone, Debug)]
pub struct Jit {
    pub cache: DiskCache,
}

impl Default for Jit {
    fn default() -> Self {
        Jit { cache: DiskCache::from_env() }
    }
}

impl Jit {
    pub fn new(cache: DiskCache) -> Self {
        Jit { cache }
    }

    pub fn compile(&self, v: &Variant) -> Result<Compiled> {
        let t0 = Instant::now();
        let info = ensure_loaded()?;
        let source = sources::flatten(v.kind.entry_file())?;
        let options = v.options();
        let version = format!("{}.{}", info.version.0, info.version.1);
        let arch = v.arch.nvrtc_arch();
        let opts_joined = options.join("\u{1f}");
        let key = cache::key(&[source.as_bytes(), opts_joined.as_bytes(), version.as_bytes(), arch.as_bytes()]);
        let cache_name = format!("{v}-{}", &key[..16]);
        if let Some(cubin) = self.cache.load(&cache_name) {
            return Ok(Compiled {
                cubin,
                from_disk_cache: true,
                seconds: t0.elapsed().as_secs_f64(),
                cache_name,
                log: String::new(),
            });
        }
        let (cubin, log) = nvrtc::compile_cubin(&v.to_string(), &source, &options)?;
        // A cache we cannot write (read-only home, full disk) must not fail the call.
        let _ = self.cache.store(&cache_name, &cubin);
        Ok(Compiled { cubin, from_disk_cache: false, seconds: t0.elapsed().as_secs_f64(), cache_name, log })
    }
}
