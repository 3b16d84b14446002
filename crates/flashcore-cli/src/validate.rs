//! `flashcore validate` and `flashcore bench`: the shape matrix on the GPU against the f64 reference.

use crate::gpu::{run_shape, run_shape_bwd, ShapeRun};
use crate::record::{write_json, Record};
use crate::shapes::{self, Shape};
use flashcore::Runtime;

/// Reference work per shape (multiply-adds per precision) for validate; bench checks fewer rows.
const VALIDATE_BUDGET: f64 = 2e9;
const BENCH_BUDGET: f64 = 2e8;

/// Which pass a row of the matrix runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Fwd,
    /// dq, dk, dv; the `rows` column counts checked (batch, kv head) groups.
    Bwd,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Fwd => "fwd",
            Mode::Bwd => "bwd",
        }
    }
}

fn header(mode: Mode) {
    println!(
        "{:<22} {:<34} {:>9} {:>9} {:>9} {:>5} {:>6} {:>9} {:>8} {:>8} {:>6}  variant",
        "name",
        "shape",
        "max_err",
        "bar",
        "rel_l2",
        "ok",
        if mode == Mode::Bwd { "groups" } else { "rows" },
        "ms",
        "TF/s",
        "us/head",
        "%peak"
    );
}

fn record(rt: &Runtime, s: &Shape, r: &ShapeRun, mode: Mode) -> Record {
    let p = flashcore::Problem {
        batch: s.b,
        heads: s.h,
        kv_heads: s.hkv(),
        seqlen_q: s.sq,
        seqlen_k: s.sk(),
        head_dim: s.d,
        dtype: s.dtype,
        mask: s.mask(),
        scale: 1.0,
        window: Default::default(),
        softcap: None,
    };
    let flops = if mode == Mode::Bwd { p.backward_flops() } else { p.flops() };
    let tflops = flops / (r.ms * 1e-3) / 1e12;
    Record {
        device: rt.info().name.clone(),
        backend: "flashcore".into(),
        mode: mode.name().into(),
        dtype: s.dtype.name().into(),
        b: s.b,
        h: s.h,
        hkv: s.hkv(),
        sq: s.sq,
        sk: s.sk(),
        d: s.d,
        causal: s.mask().is_causal(),
        mask: s.mask().name().into(),
        layout: if s.bhsd() { "bhsd" } else { "bshd" }.into(),
        name: s.name.clone(),
        ms: r.ms,
        tflops,
        max_abs_err: r.err.max_abs,
        rel_err: r.err.rel_l2,
        naive_max_abs_err: r.naive.max_abs,
        passed: r.passed,
        us_per_head: r.ms * 1e3 / s.h as f64,
        pct_peak: 100.0 * tflops / rt.info().peak_tflops(),
        variant: r.variant.clone(),
        gbps: None,
        copy_gbps: None,
    }
}

fn print_row(s: &Shape, rec: &Record, r: &ShapeRun) {
    println!(
        "{:<22} {:<34} {:>9.2e} {:>9.2e} {:>9.2e} {:>5} {:>6} {:>9.4} {:>8.1} {:>8.2} {:>6.1}  {}{}",
        s.name,
        s.label(),
        rec.max_abs_err,
        2.0 * r.naive.max_abs + 1e-5,
        rec.rel_err,
        if r.passed { "pass" } else { "FAIL" },
        r.rows_checked,
        rec.ms,
        rec.tflops,
        rec.us_per_head,
        rec.pct_peak,
        rec.variant,
        if r.unwritten > 0 || r.lse_max_err > 1e-3 {
            format!("  [unwritten {}, lse err {:.1e}]", r.unwritten, r.lse_max_err)
        } else {
            String::new()
        }
    );
}

/// Runs the forward rows, then the backward rows: prints one table each; returns the records and
/// the number of failed rows.
fn run_matrix(rt: &Runtime, fwd: &[Shape], bwd: &[Shape], budget: f64, iters: usize) -> (Vec<Record>, usize) {
    let mut flush = match rt.stream().alloc_zeros::<u8>(256 << 20) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot allocate the L2 flush buffer: {e}");
            return (Vec::new(), fwd.len() + bwd.len());
        }
    };
    let info = rt.info();
    println!(
        "device: {} ({}), {} SMs, peak {:.0} TF/s (dense fp16/bf16 at max clock)",
        info.name,
        info.arch,
        info.sm_count,
        info.peak_tflops()
    );
    let mut records = Vec::new();
    let mut failed = 0;
    for (mode, list) in [(Mode::Fwd, fwd), (Mode::Bwd, bwd)] {
        if list.is_empty() {
            continue;
        }
        if mode == Mode::Bwd {
            println!("\nbackward (dq, dk, dv against the f64 backward; FLOPs = 2.5 x forward)");
        }
        header(mode);
        let mut mode_failed = 0;
        for s in list {
            let run = match mode {
                Mode::Fwd => run_shape(rt, s, budget, iters, &mut flush),
                Mode::Bwd => run_shape_bwd(rt, s, budget, iters, &mut flush),
            };
            match run {
                Ok(r) => {
                    let rec = record(rt, s, &r, mode);
                    print_row(s, &rec, &r);
                    mode_failed += usize::from(!r.passed);
                    records.push(rec);
                }
                Err(e) => {
                    mode_failed += 1;
                    println!("{:<22} {:<34} FAIL: {e}", s.name, s.label());
                }
            }
        }
        println!("{} {} rows, {} passed, {} failed", list.len(), mode.name(), list.len() - mode_failed, mode_failed);
        failed += mode_failed;
    }
    (records, failed)
}

/// Writes the records (if asked); returns the failure count plus one if the file could not be written.
fn finish(records: &[Record], mut failed: usize, json: Option<&str>) -> usize {
    if let Some(path) = json {
        match write_json(path, records) {
            Ok(()) => println!("wrote {path}"),
            Err(e) => {
                eprintln!("cannot write {path}: {e}");
                failed += 1;
            }
        }
    }
    failed
}

pub fn validate(full: bool, json: Option<&str>, only: Option<&str>) -> i32 {
    let rt = match Runtime::new(0) {
        Ok(rt) => rt,
        Err(e) => {
            println!("No CUDA device found ({e}).");
            println!("Validating the CPU path (the f64 reference that serves CPU tensors) on a small matrix instead.");
            return crate::cpu::validate();
        }
    };
    let mut list = if full { shapes::all() } else { shapes::suite(&["quick"]) };
    let mut bwd = if full { shapes::backward_all() } else { shapes::backward_suite(&["quick"]) };
    if let Some(f) = only {
        list.retain(|s| s.name.contains(f));
        bwd.retain(|s| s.name.contains(f));
    }
    let (mut records, mut failed) = run_matrix(&rt, &list, &bwd, VALIDATE_BUDGET, 10);
    let mut infer = crate::infer::validate_shapes();
    if let Some(f) = only {
        infer.retain(|s| s.name.contains(f));
    }
    if !infer.is_empty() {
        println!("\ninference paths (window, softcap, varlen, KV cache, paged, split-KV; sampled sequences vs f64)");
        let (r, f) = crate::infer::run_rows(&rt, &infer, 10, &[], false);
        println!("{} inference rows, {} failed", r.len(), f);
        records.extend(r);
        failed += f;
    }
    i32::from(finish(&records, failed, json) > 0)
}

pub fn bench(suite: &str, json: Option<&str>, iters: usize, only: Option<&str>) -> i32 {
    let rt = match Runtime::new(0) {
        Ok(rt) => rt,
        Err(e) => {
            println!("bench needs a CUDA device: {e}");
            return 2;
        }
    };
    if suite == "decode" {
        // FLASHCORE_BENCH_SPLITS=1,2,4 also times every row with those forced split counts.
        let sweep: Vec<usize> = std::env::var("FLASHCORE_BENCH_SPLITS")
            .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_default();
        let mut list = crate::infer::decode_shapes();
        if let Some(f) = only {
            list.retain(|s| s.name.contains(f));
        }
        let (records, failed) = crate::infer::run_rows(&rt, &list, iters.max(20), &sweep, true);
        return i32::from(finish(&records, failed, json) > 0);
    }
    let names: Vec<&str> = match suite {
        "all" => vec!["seed", "fa", "gqa", "long", "bwd"],
        s => vec![s],
    };
    let mut list = shapes::suite(&names);
    let mut bwd = shapes::backward_suite(&names);
    if let Some(f) = only {
        list.retain(|s| s.name.contains(f));
        bwd.retain(|s| s.name.contains(f));
    }
    if list.is_empty() && bwd.is_empty() {
        println!(
            "no shapes in suite `{suite}` (suites: seed, fa, gqa, long, edge, huge, quick, tune, bwd, bwd-long, bwd-edge, decode, all)"
        );
        return 2;
    }
    let (records, failed) = run_matrix(&rt, &list, &bwd, BENCH_BUDGET, iters.max(20));
    i32::from(finish(&records, failed, json) > 0)
}
