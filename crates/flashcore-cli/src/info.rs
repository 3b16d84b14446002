//! `flashcore info`: what was found, and what to do about what was not.

use flashcore::jit::{ensure_loaded, DiskCache};
use flashcore::Runtime;

pub fn run() -> i32 {
    println!("flashcore {}", env!("CARGO_PKG_VERSION"));
    match Runtime::new(0) {
        Ok(rt) => {
            let i = rt.info();
            println!(
                "GPU {}: {} ({}), {} SMs, {} MHz, {:.0} KiB smem/block, {:.0} MiB L2, {:.1} GiB",
                i.ordinal,
                i.name,
                i.arch,
                i.sm_count,
                i.clock_khz / 1000,
                i.max_smem_per_block as f64 / 1024.0,
                i.l2_bytes as f64 / 1048576.0,
                i.total_mem as f64 / 1073741824.0
            );
            println!("driver: CUDA {}.{}", i.driver_version / 1000, (i.driver_version % 1000) / 10);
            println!("dense fp16/bf16 peak at max clock: {:.0} TFLOP/s", i.peak_tflops());
        }
        Err(e) => println!("GPU: none usable ({e})"),
    }
    match ensure_loaded() {
        Ok(n) => {
            println!(
                "NVRTC {}.{} from {} ({})",
                n.version.0,
                n.version.1,
                n.path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "the loader path".into()),
                n.found_by
            );
            if let Some(b) = &n.builtins {
                println!("NVRTC builtins preloaded: {}", b.display());
            }
        }
        Err(e) => println!("NVRTC: {e}"),
    }
    let cache = DiskCache::from_env();
    let entries = cache.entries();
    let bytes: u64 = entries.iter().map(|e| e.bytes).sum();
    println!(
        "kernel cache: {} ({} entries, {:.1} MiB)",
        cache.dir().display(),
        entries.len(),
        bytes as f64 / 1048576.0
    );
    for e in entries.iter().take(50) {
        println!("  {} ({} KiB)", e.name, e.bytes / 1024);
    }
    if entries.len() > 50 {
        println!("  ... and {} more", entries.len() - 50);
    }
    0
}
