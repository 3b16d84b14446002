//! `flashcore warmup`: compile the standard variant set in parallel, with a progress bar.

use flashcore::jit::Jit;
use flashcore::{Arch, Result, Variant};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::path::PathBuf;

pub fn run(archs: Vec<Arch>, out_dir: Option<PathBuf>, jobs: Option<usize>, only: Option<&str>) -> Result<i32> {
    let jit = Jit::default();
    flashcore::jit::ensure_loaded()?;
    let variants: Vec<Variant> = archs
        .iter()
        .flat_map(|a| Variant::standard_set(*a))
        .filter(|v| only.is_none_or(|f| v.to_string().contains(f)))
        .collect();
    if let Some(d) = &out_dir {
        std::fs::create_dir_all(d).map_err(|e| flashcore::Error::Cache(format!("{}: {e}", d.display())))?;
    }
    let pb = ProgressBar::new(variants.len() as u64);
    pb.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.unwrap_or(0))
        .build()
        .map_err(|e| flashcore::Error::Nvrtc(e.to_string()))?;
    let t0 = std::time::Instant::now();
    let results: Vec<(Variant, Result<flashcore::jit::Compiled>)> = pool.install(|| {
        variants
            .par_iter()
            .map(|v| {
                let r = jit.compile(v);
                pb.inc(1);
                pb.set_message(v.to_string());
                (*v, r)
            })
            .collect()
    });
    pb.finish_and_clear();
    let mut failed = 0;
    let (mut cold, mut cached) = (Vec::new(), Vec::new());
    for (v, r) in &results {
        match r {
            Ok(c) => {
                println!(
                    "{:<48} {:>7.3} s {}",
                    v.to_string(),
                    c.seconds,
                    if c.from_disk_cache { "cached" } else { "compiled" }
                );
                if !c.log.is_empty() {
                    println!("  nvrtc log: {}", c.log.replace('\n', "\n  "));
                }
                if c.from_disk_cache {
                    cached.push(c.seconds)
                } else {
                    cold.push(c.seconds)
                }
                if let Some(d) = &out_dir {
                    // Beside each CUBIN the dynamic shared memory the host launches it with, which
                    // scripts/check_smem.py compares with the kernel's own count (fc_smem_bytes).
                    let write = |name: String, bytes: &[u8]| {
                        std::fs::write(d.join(name), bytes)
                            .map_err(|e| flashcore::Error::Cache(format!("{}: {e}", d.display())))
                    };
                    write(format!("{v}.cubin"), &c.cubin)?;
                    write(format!("{v}.smem"), v.smem_bytes().to_string().as_bytes())?;
                }
            }
            Err(e) => {
                failed += 1;
                println!("{:<48} FAILED: {e}", v.to_string());
            }
        }
    }
    let stat = |x: &Vec<f64>| {
        if x.is_empty() {
            "-".to_string()
        } else {
            format!(
                "max {:.3} s, mean {:.3} s",
                x.iter().cloned().fold(0.0, f64::max),
                x.iter().sum::<f64>() / x.len() as f64
            )
        }
    };
    println!(
        "{} variants in {:.1} s wall; cold compiles: {} ({}); cache loads: {} ({}); {} failed",
        results.len(),
        t0.elapsed().as_secs_f64(),
        cold.len(),
        stat(&cold),
        cached.len(),
        stat(&cached),
        failed
    );
    Ok(if failed > 0 { 1 } else { 0 })
}
