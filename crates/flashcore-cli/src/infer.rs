//! The inference paths on the GPU: `validate` rows (window, softcap, varlen, KV-cache decode, paged,
//! split-KV) checked on sampled sequences against the f64 reference, and `bench --suite decode`
//! (achieved K/V bandwidth against a device-to-device copy measured in the same run).

use crate::data::{fresh_seed, nan_bits, randn_bits};
use crate::gpu::time_median_ms;
use crate::record::Record;
use flashcore::cudarc::driver::{CudaSlice, DevicePtr};
use flashcore::reference::{attention_scored, compare, within_bar, ErrorStats, HostTensor, Precision, Scoring};
use flashcore::{
    AttnOptions, DType, KvArrays, KvSpec, Mask, Paged, Problem, Result, Runtime, TensorDesc, Varlen, Visibility, Window,
};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// How the keys (and, varlen, the queries) are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// [B, Sk, Hkv, D], every sequence full.
    Dense,
    /// A [B, Sk, Hkv, D] cache with per-sequence lengths (seqused_k).
    Cache,
    /// A shuffled page pool of pages of this many tokens, with a block table and seqused_k.
    Paged(usize),
    /// Packed q and k/v with cu_seqlens.
    Varlen,
}

#[derive(Clone, Debug)]
pub struct InferShape {
    pub name: &'static str,
    pub dtype: DType,
    pub h: usize,
    pub hkv: usize,
    pub d: usize,
    /// (Sq, Sk) per sequence.
    pub seqs: Vec<(usize, usize)>,
    pub layout: Layout,
    pub mask: Mask,
    pub window: Window,
    pub softcap: Option<f32>,
    pub splits: Option<usize>,
}

impl InferShape {
    fn new(name: &'static str, h: usize, hkv: usize, d: usize, seqs: Vec<(usize, usize)>, layout: Layout) -> Self {
        InferShape {
            name,
            dtype: DType::Bf16,
            h,
            hkv,
            d,
            seqs,
            layout,
            mask: Mask::None,
            window: Window::default(),
            softcap: None,
            splits: None,
        }
    }
    fn batch(&self) -> usize {
        self.seqs.len()
    }
    fn max_q(&self) -> usize {
        self.seqs.iter().map(|s| s.0).max().unwrap_or(0)
    }
    fn max_k(&self) -> usize {
        self.seqs.iter().map(|s| s.1).max().unwrap_or(0)
    }
    /// Bytes of K and V the call must read (each used key once per kv head).
    fn kv_bytes(&self) -> f64 {
        let keys: usize = self.seqs.iter().map(|s| s.1).sum();
        (2 * keys * self.hkv * self.d * 2) as f64
    }
    /// Matmul FLOPs of every sequence, visible pairs counted exactly.
    fn flops(&self) -> f64 {
        self.seqs
            .iter()
            .map(|&(sq, sk)| {
                let vis = Visibility { mask: self.mask, window: self.window };
                let pairs: usize = (0..sq).map(|i| vis.visible_count(i, sq, sk)).sum();
                4.0 * (self.h * self.d) as f64 * pairs as f64
            })
            .sum()
    }
    fn label(&self) -> String {
        let kind = match self.layout {
            Layout::Dense => "dense".to_string(),
            Layout::Cache => "cache".to_string(),
            Layout::Paged(p) => format!("paged{p}"),
            Layout::Varlen => "varlen".to_string(),
        };
        format!(
            "B{} H{}/{} Sq{} Sk{} d{} {} {}",
            self.batch(),
            self.h,
            self.hkv,
            self.max_q(),
            self.max_k(),
            self.d,
            kind,
            self.mask.name()
        )
    }
}

/// Mixed lengths from 100 to 8K summing to about `tokens` (deterministic).
fn mixed_lengths(tokens: usize) -> Vec<(usize, usize)> {
    let pattern = [8192, 100, 3000, 517, 6000, 1200, 250, 4096, 777, 2048];
    let mut out = Vec::new();
    let mut total = 0;
    for &l in pattern.iter().cycle() {
        if total + l > tokens {
            break;
        }
        out.push((l, l));
        total += l;
    }
    out
}

pub fn validate_shapes() -> Vec<InferShape> {
    let mut v = Vec::new();
    let mut s = InferShape::new("win-causal-left", 8, 2, 128, vec![(2048, 2048); 2], Layout::Dense);
    s.mask = Mask::CausalBottomRight;
    s.window = Window { left: Some(256), right: None };
    v.push(s);
    let mut s = InferShape::new("win-both", 8, 8, 64, vec![(1024, 1024); 2], Layout::Dense);
    s.dtype = DType::F16;
    s.window = Window { left: Some(128), right: Some(64) };
    v.push(s);
    let mut s = InferShape::new("softcap-causal", 8, 2, 128, vec![(2048, 2048); 2], Layout::Dense);
    s.mask = Mask::CausalBottomRight;
    s.softcap = Some(30.0);
    v.push(s);
    let mut s = InferShape::new("softcap-d256", 4, 4, 256, vec![(1024, 1024)], Layout::Dense);
    s.softcap = Some(50.0);
    v.push(s);
    let mut s = InferShape::new("varlen-prefill", 8, 2, 128, mixed_lengths(16384), Layout::Varlen);
    s.mask = Mask::CausalBottomRight;
    v.push(s);
    let mut s = InferShape::new("varlen-window", 8, 2, 128, mixed_lengths(16384), Layout::Varlen);
    s.mask = Mask::CausalBottomRight;
    s.window = Window { left: Some(1024), right: Some(0) };
    v.push(s);
    let lens = [8192, 5000, 1, 8000, 77, 8192, 4096, 3333];
    v.push(InferShape::new("decode-cache", 32, 8, 128, lens.iter().map(|&k| (1, k)).collect(), Layout::Cache));
    let mut s =
        InferShape::new("decode-paged64", 32, 8, 128, lens.iter().map(|&k| (1, k)).collect(), Layout::Paged(64));
    s.mask = Mask::CausalBottomRight;
    v.push(s);
    let mut s =
        InferShape::new("decode-paged16-win", 32, 8, 128, lens.iter().map(|&k| (4, k)).collect(), Layout::Paged(16));
    s.mask = Mask::CausalBottomRight;
    s.window = Window { left: Some(1000), right: Some(0) };
    s.splits = Some(4);
    v.push(s);
    v.push(InferShape::new("decode-split-128k", 32, 8, 128, vec![(1, 131072)], Layout::Dense));
    v
}

pub fn decode_shapes() -> Vec<InferShape> {
    let mut v = Vec::new();
    for sk in [8192, 32768] {
        v.push(InferShape::new("decode-b32", 32, 8, 128, vec![(1, sk); 32], Layout::Dense));
        v.push(InferShape::new("decode-b32-paged64", 32, 8, 128, vec![(1, sk); 32], Layout::Paged(64)));
    }
    for sk in [131072, 262144, 524288, 1048576] {
        v.push(InferShape::new("decode-b1", 32, 8, 128, vec![(1, sk)], Layout::Dense));
    }
    let mut s = InferShape::new("varlen-prefill-64k", 32, 8, 128, mixed_lengths(65536), Layout::Varlen);
    s.mask = Mask::CausalBottomRight;
    v.push(s);
    let mut s = InferShape::new("dense-prefill-64k", 32, 8, 128, vec![(8192, 8192); 8], Layout::Dense);
    s.mask = Mask::CausalBottomRight;
    v.push(s);
    v
}

/// One shape on the device: inputs, the call's arrays, and how to read sequence b's rows back.
struct Setup {
    q: flashcore::DeviceTensor,
    k: flashcore::DeviceTensor,
    v: flashcore::DeviceTensor,
    out: flashcore::DeviceTensor,
    lse: CudaSlice<f32>,
    host_q: Vec<u16>,
    host_k: Vec<u16>,
    host_v: Vec<u16>,
    cu_q: Vec<usize>,
    cu_k: Vec<usize>,
    /// Pool page of (sequence, page index), paged layout only.
    table: Vec<i32>,
    stride: usize,
    arrays: [Option<CudaSlice<i32>>; 4],
    spec: KvSpec,
}

fn setup(rt: &Runtime, s: &InferShape, seed: u64) -> Result<Setup> {
    let (b, h, hkv, d, dt) = (s.batch(), s.h, s.hkv, s.d, s.dtype);
    let (max_q, max_k) = (s.max_q(), s.max_k());
    let varlen = s.layout == Layout::Varlen;
    let mut cu_q = vec![0usize];
    let mut cu_k = vec![0usize];
    for &(sq, sk) in &s.seqs {
        cu_q.push(cu_q.last().copied().unwrap_or(0) + sq);
        cu_k.push(cu_k.last().copied().unwrap_or(0) + sk);
    }
    let qd = if varlen {
        TensorDesc::contiguous_bshd(1, cu_q[b], h, d, dt)
    } else {
        TensorDesc::contiguous_bshd(b, max_q, h, d, dt)
    };
    let mut table = Vec::new();
    let mut stride = 0;
    let kd = match s.layout {
        Layout::Dense | Layout::Cache => TensorDesc::contiguous_bshd(b, max_k, hkv, d, dt),
        Layout::Varlen => TensorDesc::contiguous_bshd(1, cu_k[b], hkv, d, dt),
        Layout::Paged(page) => {
            stride = max_k.div_ceil(page);
            let pages: usize = s.seqs.iter().map(|x| x.1.div_ceil(page)).sum();
            let mut order: Vec<i32> = (0..pages as i32).collect();
            order.shuffle(&mut SmallRng::seed_from_u64(seed));
            table = vec![0i32; b * stride];
            let mut next = 0;
            for (i, &(_, sk)) in s.seqs.iter().enumerate() {
                for pi in 0..sk.div_ceil(page) {
                    table[i * stride + pi] = order[next];
                    next += 1;
                }
            }
            TensorDesc::contiguous_bshd(pages, page, hkv, d, dt)
        }
    };
    let n = |t: &TensorDesc| t.span().unwrap_or(0) as usize;
    let host_q = randn_bits(n(&qd), dt, seed);
    let host_k = randn_bits(n(&kd), dt, seed.wrapping_add(1));
    let host_v = randn_bits(n(&kd), dt, seed.wrapping_add(2));
    let q = rt.upload(&host_q, qd)?;
    let k = rt.upload(&host_k, kd)?;
    let v = rt.upload(&host_v, kd)?;
    let out = rt.alloc_filled(qd, nan_bits(dt))?;
    let lse = rt.stream().clone_htod(&vec![f32::NAN; h * cu_q[b].max(b * max_q)])?;
    let i32s = |x: Vec<usize>| x.into_iter().map(|y| y as i32).collect::<Vec<i32>>();
    let up = |x: &[i32]| rt.stream().clone_htod(x);
    let used = matches!(s.layout, Layout::Cache | Layout::Paged(_));
    let arrays = [
        if varlen { Some(up(&i32s(cu_q.clone()))?) } else { None },
        if varlen { Some(up(&i32s(cu_k.clone()))?) } else { None },
        if used { Some(up(&i32s(s.seqs.iter().map(|x| x.1).collect()))?) } else { None },
        if table.is_empty() { None } else { Some(up(&table)?) },
    ];
    // The device addresses too, so the planner can be asked about this exact call.
    let addr = |a: &Option<CudaSlice<i32>>| a.as_ref().map_or(0, |x| x.device_ptr(rt.stream()).0);
    let spec = KvSpec {
        varlen: varlen.then_some(Varlen {
            cu_seqlens_q: addr(&arrays[0]),
            cu_seqlens_k: addr(&arrays[1]),
            batch: b,
            max_seqlen_q: max_q,
            max_seqlen_k: max_k,
        }),
        seqused_k: addr(&arrays[2]),
        paged: match s.layout {
            Layout::Paged(page) => {
                Some(Paged { block_table: addr(&arrays[3]), stride, page_size: page, seqlen_k: max_k })
            }
            _ => None,
        },
        num_splits: s.splits,
        sinks: 0,
    };
    Ok(Setup { q, k, v, out, lse, host_q, host_k, host_v, cu_q, cu_k, table, stride, arrays, spec })
}

fn run(rt: &Runtime, s: &InferShape, st: &mut Setup, splits: Option<usize>) -> Result<()> {
    let arrays = KvArrays {
        cu_seqlens_q: st.arrays[0].as_ref(),
        cu_seqlens_k: st.arrays[1].as_ref(),
        seqused_k: st.arrays[2].as_ref(),
        block_table: st.arrays[3].as_ref(),
        sinks: None,
    };
    let spec = KvSpec { num_splits: splits.or(st.spec.num_splits), ..st.spec };
    let opts =
        AttnOptions { mask: s.mask, window: s.window, softcap: s.softcap, return_lse: true, ..Default::default() };
    rt.forward_ext(&st.q, &st.k, &st.v, &mut st.out, Some(&mut st.lse), &arrays, &spec, &opts)
}

/// Checks sequences `which` against the f64 reference (every query row of each).
fn check(rt: &Runtime, s: &InferShape, st: &Setup, which: &[usize]) -> Result<(ErrorStats, ErrorStats, f64)> {
    let (h, hkv, d, dt) = (s.h, s.hkv, s.d, s.dtype);
    let out_bits = rt.download(&st.out)?;
    let lse: Vec<f32> = rt.stream().clone_dtoh(&st.lse)?;
    let varlen = s.layout == Layout::Varlen;
    let (max_q, max_k) = (s.max_q(), s.max_k());
    let row = hkv * d;
    let (mut got, mut want, mut naive) = (Vec::new(), Vec::new(), Vec::new());
    let mut lse_err = 0f64;
    for &bi in which {
        let (sq, sk) = s.seqs[bi];
        let q0 = if varlen { st.cu_q[bi] } else { bi * max_q };
        let qv: Vec<f64> = st.host_q[q0 * h * d..][..sq * h * d].iter().map(|x| dt.decode(*x)).collect();
        // Sequence bi's keys, gathered from its layout.
        let key_row = |j: usize| -> usize {
            match s.layout {
                Layout::Dense | Layout::Cache => bi * max_k + j,
                Layout::Varlen => st.cu_k[bi] + j,
                Layout::Paged(page) => st.table[bi * st.stride + j / page] as usize * page + j % page,
            }
        };
        let gather = |src: &[u16]| -> Vec<f64> {
            (0..sk).flat_map(|j| src[key_row(j) * row..][..row].iter().map(|x| dt.decode(*x))).collect()
        };
        let (kv, vv) = (gather(&st.host_k), gather(&st.host_v));
        let leak = |x: Vec<f64>| -> &'static [f64] { Box::leak(x.into_boxed_slice()) };
        let qh = HostTensor::bshd(leak(qv), [1, sq, h, d])?;
        let kh = HostTensor::bshd(leak(kv), [1, sk, hkv, d])?;
        let vh = HostTensor::bshd(leak(vv), [1, sk, hkv, d])?;
        let sc = Scoring { vis: Visibility { mask: s.mask, window: s.window }, softcap: s.softcap };
        let scale = 1.0 / (d as f64).sqrt();
        // Long prefill sequences: the first and last rows and a spread between them.
        let rows: Vec<usize> = if sq > 64 && sq * sk * h * d > 1 << 31 {
            let mut r: Vec<usize> = (0..16).map(|i| i * (sq - 1) / 15).collect();
            r.extend([1, sq - 2]);
            r.sort_unstable();
            r.dedup();
            r
        } else {
            (0..sq).collect()
        };
        let nr = rows.len();
        let w = attention_scored(&qh, &kh, &vh, sc, scale, Some(&rows), Precision::F64)?;
        let nv = attention_scored(&qh, &kh, &vh, sc, scale, Some(&rows), Precision::Naive(dt))?;
        for &r in &rows {
            got.extend(out_bits[(q0 + r) * h * d..][..h * d].iter().map(|x| dt.decode(*x)));
        }
        want.extend(w.out);
        naive.extend(nv.out);
        for hi in 0..h {
            for (ri, &i) in rows.iter().enumerate() {
                let g = if varlen {
                    lse[hi * st.cu_q[s.batch()] + st.cu_q[bi] + i]
                } else {
                    lse[(bi * h + hi) * max_q + i]
                };
                let w = w.lse[hi * nr + ri];
                let e = (g as f64 - w).abs();
                // -inf on both sides (a row that sees no key) is exact.
                let e = if g as f64 == w {
                    0.0
                } else if e.is_nan() {
                    f64::INFINITY
                } else {
                    e
                };
                lse_err = lse_err.max(e);
            }
        }
    }
    Ok((compare(&got, &want), compare(&naive, &want), lse_err))
}

#[allow(clippy::too_many_arguments)]
fn record(
    rt: &Runtime,
    s: &InferShape,
    ms: f64,
    err: ErrorStats,
    naive: ErrorStats,
    passed: bool,
    copy_gbps: f64,
    variant: String,
) -> Record {
    let tflops = s.flops() / (ms * 1e-3) / 1e12;
    let gbps = s.kv_bytes() / (ms * 1e-3) / 1e9;
    let p = Problem {
        batch: s.batch(),
        heads: s.h,
        kv_heads: s.hkv,
        seqlen_q: s.max_q(),
        seqlen_k: s.max_k(),
        head_dim: s.d,
        dtype: s.dtype,
        mask: s.mask,
        scale: 1.0,
        window: s.window,
        softcap: s.softcap,
    };
    Record {
        device: rt.info().name.clone(),
        backend: "flashcore".into(),
        mode: "fwd".into(),
        dtype: s.dtype.name().into(),
        b: p.batch,
        h: p.heads,
        hkv: p.kv_heads,
        sq: p.seqlen_q,
        sk: p.seqlen_k,
        d: p.head_dim,
        causal: p.mask.is_causal(),
        mask: p.mask.name().into(),
        layout: s.label(),
        name: s.name.into(),
        ms,
        tflops,
        max_abs_err: err.max_abs,
        rel_err: err.rel_l2,
        naive_max_abs_err: naive.max_abs,
        passed,
        us_per_head: ms * 1e3 / s.h as f64,
        pct_peak: 100.0 * tflops / rt.info().peak_tflops(),
        variant,
        gbps: Some(gbps),
        copy_gbps: (copy_gbps > 0.0).then_some(copy_gbps),
    }
}

/// Device-to-device copy bandwidth (bytes read + written per second) of a 1 GiB buffer.
pub fn copy_gbps(rt: &Runtime, flush: &mut CudaSlice<u8>) -> Result<f64> {
    let n = 1usize << 30;
    let src = rt.stream().alloc_zeros::<u8>(n)?;
    let mut dst = rt.stream().alloc_zeros::<u8>(n)?;
    let ms = time_median_ms(rt, flush, 20, || Ok(rt.stream().memcpy_dtod(&src, &mut dst)?))?;
    Ok(2.0 * n as f64 / (ms * 1e-3) / 1e9)
}

/// Runs `shapes`: check (sampled sequences), time, print. `splits_sweep` re-times each shape with
/// forced split counts (the planner's evidence). Returns (records, failures).
pub fn run_rows(
    rt: &Runtime,
    shapes: &[InferShape],
    iters: usize,
    splits_sweep: &[usize],
    with_copy: bool,
) -> (Vec<Record>, usize) {
    let mut flush = match rt.stream().alloc_zeros::<u8>(256 << 20) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot allocate the L2 flush buffer: {e}");
            return (Vec::new(), shapes.len());
        }
    };
    let copy = if with_copy { copy_gbps(rt, &mut flush).unwrap_or(0.0) } else { 0.0 };
    if with_copy {
        println!("device-to-device copy: {copy:.0} GB/s (read + write)");
    }
    println!(
        "{:<20} {:<44} {:>6} {:>9} {:>9} {:>5} {:>9} {:>8} {:>8} {:>6}  variant",
        "name", "shape", "splits", "max_err", "bar", "ok", "ms", "TF/s", "GB/s", "%copy"
    );
    let mut records = Vec::new();
    let mut failed = 0;
    for s in shapes {
        let seed = fresh_seed();
        let res = (|| -> Result<Vec<(Record, String)>> {
            let mut st = setup(rt, s, seed)?;
            run(rt, s, &mut st, None)?;
            rt.synchronize()?;
            let b = s.batch();
            let mut which: Vec<usize> = vec![0, b - 1, b / 2];
            which.sort_unstable();
            which.dedup();
            let (err, naive, lse_err) = check(rt, s, &st, &which)?;
            let passed = within_bar(&err, &naive) && lse_err <= 1e-3 && err.nan_count == 0;
            let mut rows = Vec::new();
            let ep = flashcore::api::check::check_ext(
                &st.q.desc,
                &st.k.desc,
                &st.v.desc,
                &st.out.desc,
                &st.spec,
                &AttnOptions { mask: s.mask, window: s.window, softcap: s.softcap, ..Default::default() },
            )?;
            let plan = rt.plan_ext(&ep, &st.spec)?;
            let mut runs: Vec<Option<usize>> = vec![None];
            runs.extend(splits_sweep.iter().map(|&n| Some(n)));
            for forced in runs {
                let shown = forced.unwrap_or(if st.spec.num_splits.is_some() {
                    st.spec.num_splits.unwrap_or(1)
                } else {
                    plan.num_splits
                });
                let ms = time_median_ms(rt, &mut flush, iters, || run(rt, s, &mut st, forced))?;
                let rec = record(rt, s, ms, err, naive, passed, copy, format!("{} splits{shown}", plan.variant));
                rows.push((rec, format!("{}{}", shown, if forced.is_some() { "*" } else { "" })));
            }
            Ok(rows)
        })();
        match res {
            Ok(rows) => {
                for (rec, splits) in rows {
                    println!(
                        "{:<20} {:<44} {:>6} {:>9.2e} {:>9.2e} {:>5} {:>9.4} {:>8.1} {:>8.0} {:>6.1}  {}",
                        s.name,
                        s.label(),
                        splits,
                        rec.max_abs_err,
                        2.0 * rec.naive_max_abs_err + 1e-5,
                        if rec.passed { "pass" } else { "FAIL" },
                        rec.ms,
                        rec.tflops,
                        rec.gbps.unwrap_or(0.0),
                        if copy > 0.0 { 100.0 * rec.gbps.unwrap_or(0.0) / copy } else { f64::NAN },
                        rec.variant
                    );
                    failed += usize::from(!rec.passed);
                    records.push(rec);
                }
            }
            Err(e) => {
                failed += 1;
                println!("{:<20} {:<44} FAIL: {e}", s.name, s.label());
            }
        }
    }
    (records, failed)
}
