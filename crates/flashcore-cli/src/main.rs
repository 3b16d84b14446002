//! The `flashcore` command: info | plan | warmup | validate | bench.

mod cpu;
mod data;
mod fp8;
mod gpu;
mod infer;
mod info;
mod record;
mod shapes;
mod validate;
mod warmup;

use clap::{Parser, Subcommand};
use flashcore::{Arch, AttnOptions, DType, Mask, Problem};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "flashcore", version, about = "Exact fused attention for NVIDIA GPUs")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// GPU, driver, NVRTC and kernel cache found on this machine.
    Info,
    /// The kernel variant, tile and grid chosen for one shape (no GPU needed).
    Plan {
        #[arg(long, default_value_t = 1)]
        b: usize,
        #[arg(long, default_value_t = 16)]
        h: usize,
        #[arg(long)]
        hkv: Option<usize>,
        #[arg(long, default_value_t = 4096)]
        sq: usize,
        #[arg(long)]
        sk: Option<usize>,
        #[arg(long, default_value_t = 128)]
        d: usize,
        #[arg(long, default_value = "bf16")]
        dtype: DType,
        #[arg(long, default_value = "none")]
        mask: Mask,
        /// Target arch (default: the GPU's, else sm_90a).
        #[arg(long)]
        arch: Option<Arch>,
    },
    /// Compile the standard kernel set into the disk cache, in parallel.
    Warmup {
        /// Arch(es) to compile for, e.g. sm_80,sm_90a (default: the GPU's). Works without a GPU.
        #[arg(long, value_delimiter = ',')]
        arch: Vec<Arch>,
        /// Also write each CUBIN to this folder (for cuobjdump checks).
        #[arg(long)]
        out_dir: Option<PathBuf>,
        #[arg(long)]
        jobs: Option<usize>,
        /// Only variants whose name contains this (e.g. `bwd`).
        #[arg(long)]
        only: Option<String>,
    },
    /// Check the kernels against the f64 reference over the shape matrix (bench/shapes.toml).
    Validate {
        #[arg(long, conflicts_with = "full")]
        quick: bool,
        #[arg(long)]
        full: bool,
        #[arg(long)]
        json: Option<String>,
        /// Only rows whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
    /// FP8 forward (sm_90a): inputs with outliers, RMSE against the f64 reference beside our bf16
    /// kernel, each quantization mode checked against the naive FP8 bar (`--bench`: the timed
    /// FA3-style matrix, D 64/128/256, S 1K..16K). FLASHCORE_FP8_P_LOG2 picks P's scale.
    Fp8 {
        #[arg(long)]
        bench: bool,
        #[arg(long)]
        json: Option<String>,
        #[arg(long, default_value_t = 20)]
        iters: usize,
        #[arg(long)]
        only: Option<String>,
        /// Only these FP8 modes (comma-separated names, e.g. fp8-tensor,fp8-block); bf16 always runs.
        #[arg(long)]
        modes: Option<String>,
    },
    /// Time the kernels (CUDA events, warm-up, median, L2 flushed before each run).
    Bench {
        #[arg(long, default_value = "all")]
        suite: String,
        #[arg(long)]
        json: Option<String>,
        #[arg(long, default_value_t = 30)]
        iters: usize,
        #[arg(long)]
        only: Option<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Info => info::run(),
        Cmd::Plan { b, h, hkv, sq, sk, d, dtype, mask, arch } => plan(b, h, hkv, sq, sk, d, dtype, mask, arch),
        Cmd::Warmup { arch, out_dir, jobs, only } => {
            let archs = if arch.is_empty() {
                match flashcore::Runtime::new(0) {
                    Ok(rt) => vec![rt.info().arch],
                    Err(e) => {
                        eprintln!("no GPU to take the arch from ({e}); pass --arch, e.g. --arch sm_80,sm_90a");
                        std::process::exit(2);
                    }
                }
            } else {
                arch
            };
            warmup::run(archs, out_dir, jobs, only.as_deref()).unwrap_or_else(|e| {
                eprintln!("warmup failed: {e}");
                1
            })
        }
        Cmd::Validate { quick: _, full, json, only } => validate::validate(full, json.as_deref(), only.as_deref()),
        Cmd::Fp8 { bench, json, iters, only, modes } => {
            fp8::run(bench, only.as_deref(), modes.as_deref(), json.as_deref(), iters)
        }
        Cmd::Bench { suite, json, iters, only } => validate::bench(&suite, json.as_deref(), iters, only.as_deref()),
    };
    std::process::exit(code);
}

#[allow(clippy::too_many_arguments)]
fn plan(
    b: usize,
    h: usize,
    hkv: Option<usize>,
    sq: usize,
    sk: Option<usize>,
    d: usize,
    dtype: DType,
    mask: Mask,
    arch: Option<Arch>,
) -> i32 {
    // Without a GPU, plan for an H100 (132 SMs).
    let (arch, max_smem, sms) = match (arch, flashcore::Runtime::new(0)) {
        (Some(a), _) => (a, a.max_smem_per_block(), 132),
        (None, Ok(rt)) => (rt.info().arch, rt.info().max_smem_per_block, rt.info().sm_count),
        (None, Err(_)) => (Arch::SM90, Arch::SM90.max_smem_per_block(), 132),
    };
    let q = flashcore::TensorDesc::contiguous_bshd(b, sq, h, d, dtype);
    let k = flashcore::TensorDesc::contiguous_bshd(b, sk.unwrap_or(sq), hkv.unwrap_or(h), d, dtype);
    let opts = AttnOptions { mask, ..Default::default() };
    let r = flashcore::api::check::check(&q, &k, &k, &q, &opts).and_then(|p: Problem| {
        let v = flashcore::Variant::forward_for(arch, &p, max_smem)?;
        Ok((p, v, flashcore::plan::forward_launch(&v, &p, sms)))
    });
    match r {
        Ok((p, v, l)) => {
            println!("variant {v}");
            println!("grid {:?} block {:?} smem {} B, {:.3} GFLOP", l.grid, l.block, l.smem_bytes, p.flops() / 1e9);
            let rows = flashcore::plan::rows_per_head(&v, &p);
            if rows < v.tile.block_m() {
                println!("GQA packing: {} query heads x {rows} rows per tile", v.tile.block_m() / rows);
            }
            0
        }
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}
