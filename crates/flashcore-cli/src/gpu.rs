//! Running one shape on the GPU: fresh inputs, poisoned outputs, check against the f64 reference on
//! (sampled) rows (forward) or (batch, kv head) groups (backward), time with CUDA events and an L2
//! flush before every timed run.

use crate::data::{fresh_seed, nan_bits, randn_bits};
use crate::shapes::Shape;
use flashcore::cudarc::driver::{sys, CudaSlice};
use flashcore::reference::{
    self, compare, within_bar, Element, ErrorStats, HostTensor, Precision, RefGrads, RefOutput,
};
use flashcore::{AttnOptions, BwdOptions, DType, DeviceTensor, Result, Runtime, TensorDesc};
use half::slice::HalfBitsSliceExt;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

pub struct ShapeRun {
    pub err: ErrorStats,
    pub naive: ErrorStats,
    pub lse_max_err: f64,
    pub unwritten: usize,
    pub rows_checked: usize,
    pub ms: f64,
    pub passed: bool,
    pub variant: String,
}

/// Query rows to check: all of them when the reference work fits `budget` multiply-adds, else the
/// first and last rows, rows around tile boundaries, and random rows.
pub fn pick_rows(s: &Shape, budget: f64, seed: u64) -> Vec<usize> {
    let per_row = (s.b * s.h * s.sk() * s.d) as f64;
    let n = ((budget / per_row) as usize).clamp(4.min(s.sq), s.sq);
    if n >= s.sq {
        return (0..s.sq).collect();
    }
    let mut rows = vec![0, 1, s.sq - 1, s.sq - 2];
    for edge in [63usize, 64, 127, 128, 129] {
        if edge < s.sq {
            rows.push(edge);
        }
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    while rows.len() < n {
        rows.push(rng.random_range(0..s.sq));
    }
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// Timing: `iters` runs, each after flushing L2 by writing `flush`; returns the median in ms.
pub fn time_median_ms(
    rt: &Runtime,
    flush: &mut CudaSlice<u8>,
    iters: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    let s = rt.stream();
    for _ in 0..3 {
        f()?;
    }
    let ctx = rt.context();
    let mut pairs = Vec::with_capacity(iters);
    for _ in 0..iters {
        s.memset_zeros(flush)?;
        let a = ctx.new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))?;
        let b = ctx.new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))?;
        a.record(s)?;
        f()?;
        b.record(s)?;
        pairs.push((a, b));
    }
    s.synchronize()?;
    let mut ms: Vec<f64> =
        pairs.iter().map(|(a, b)| a.elapsed_ms(b).map(|x| x as f64)).collect::<std::result::Result<_, _>>()?;
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Ok(ms[ms.len() / 2])
}

/// Fresh N(0,1) inputs for one tensor of a shape (`seed` + `k` tells the tensors apart): the host
/// bits the references read, and their device copy.
fn random_input(rt: &Runtime, desc: TensorDesc, dt: DType, seed: u64, k: u64) -> Result<(Vec<u16>, DeviceTensor)> {
    let bits = randn_bits(desc.span().unwrap_or(0) as usize, dt, seed.wrapping_add(k));
    let t = rt.upload(&bits, desc)?;
    Ok((bits, t))
}

pub fn run_shape(
    rt: &Runtime,
    s: &Shape,
    row_budget: f64,
    iters: usize,
    flush: &mut CudaSlice<u8>,
) -> Result<ShapeRun> {
    let seed = fresh_seed();
    let (qd, kd) = s.descs();
    let dt = s.dtype;
    let (qb, q) = random_input(rt, qd, dt, seed, 0)?;
    let (kb, k) = random_input(rt, kd, dt, seed, 1)?;
    let (vb, v) = random_input(rt, kd, dt, seed, 2)?;
    let od = qd.like();
    let mut out: DeviceTensor = rt.alloc_filled(od, nan_bits(dt))?;
    let n_lse = s.b * s.h * s.sq;
    let mut lse: CudaSlice<f32> = rt.stream().clone_htod(&vec![f32::NAN; n_lse.max(1)])?;
    // FLASHCORE_BENCH_LSE=0: the forward without an LSE output, as inference calls it (and as
    // PyTorch's SDPA backends run without grad); on Hopper that may be another build
    // (plan::Variant::with_sum_mma). Rows then check O only.
    let with_lse = std::env::var("FLASHCORE_BENCH_LSE").map_or(true, |v| v != "0");
    let opts = AttnOptions { return_lse: with_lse, ..s.options() };
    let variant = {
        let p = flashcore::api::check::check(&qd, &kd, &kd, &od, &opts)?;
        rt.plan(&p)?.0.with_sum_mma(with_lse).to_string()
    };
    let run = |out: &mut DeviceTensor, lse: &mut CudaSlice<f32>| {
        rt.forward_into(&q, &k, &v, out, if with_lse { Some(lse) } else { None }, &opts)
    };
    run(&mut out, &mut lse)?;
    rt.synchronize()?;
    let ob = rt.download(&out)?;
    let lse_h: Vec<f32> = rt.stream().clone_dtoh(&lse)?;

    // Every element must have been written over the poison.
    let lse_unwritten = if with_lse { lse_h[..n_lse].iter().filter(|x| x.is_nan()).count() } else { 0 };
    let unwritten = count_unwritten(&ob, &od, dt) + lse_unwritten;

    let rows = pick_rows(s, row_budget, seed);
    let nr = rows.len();
    let mask = s.mask();
    let scale = 1.0 / (s.d as f64).sqrt();
    let (want, naive) = match dt {
        flashcore::DType::F16 => {
            let (q, k, v): (&[half::f16], _, _) = (qb.reinterpret_cast(), kb.reinterpret_cast(), vb.reinterpret_cast());
            references(q, k, v, &qd, &kd, mask, scale, &rows, dt)?
        }
        flashcore::DType::Bf16 => {
            let (q, k, v): (&[half::bf16], _, _) =
                (qb.reinterpret_cast(), kb.reinterpret_cast(), vb.reinterpret_cast());
            references(q, k, v, &qd, &kd, mask, scale, &rows, dt)?
        }
        flashcore::DType::E4m3 => return Err(flashcore::Error::Unsupported("FP8 rows run in `flashcore fp8`".into())),
    };
    // GPU values at the checked rows, in the reference's [B, rows, H, D] / [B, H, rows] order.
    let mut got = Vec::with_capacity(want.out.len());
    for bi in 0..s.b {
        for &r in &rows {
            for hi in 0..s.h {
                let base = bi as i64 * od.strides[0] + r as i64 * od.strides[1] + hi as i64 * od.strides[2];
                got.extend((0..s.d).map(|di| dt.decode(ob[(base + di as i64) as usize])));
            }
        }
    }
    let mut lse_err = 0f64;
    for bi in (0..s.b).filter(|_| with_lse) {
        for hi in 0..s.h {
            for (ri, &r) in rows.iter().enumerate() {
                let g = lse_h[(bi * s.h + hi) * s.sq + r] as f64;
                let w = want.lse[(bi * s.h + hi) * nr + ri];
                let e = if g == w { 0.0 } else { (g - w).abs() };
                lse_err = lse_err.max(if e.is_nan() { f64::INFINITY } else { e });
            }
        }
    }
    let err = compare(&got, &want.out);
    let naive_err = compare(&naive.out, &want.out);
    // LSE is fp32 in the kernel: allow 1e-3 absolute (log-domain) error.
    let passed = unwritten == 0 && within_bar(&err, &naive_err) && lse_err <= 1e-3;

    let ms = if iters > 0 { time_median_ms(rt, flush, iters, || run(&mut out, &mut lse))? } else { f64::NAN };
    Ok(ShapeRun { err, naive: naive_err, lse_max_err: lse_err, unwritten, rows_checked: nr, ms, passed, variant })
}

fn count_unwritten(bits: &[u16], d: &TensorDesc, dt: flashcore::DType) -> usize {
    let [b, s, h, dd] = d.shape;
    (0..b * s)
        .into_par_iter()
        .map(|bs| {
            let (bi, si) = (bs / s, bs % s);
            (0..h)
                .map(|hi| {
                    let base =
                        (bi as i64 * d.strides[0] + si as i64 * d.strides[1] + hi as i64 * d.strides[2]) as usize;
                    bits[base..base + dd].iter().filter(|x| dt.decode(**x).is_nan()).count()
                })
                .sum::<usize>()
        })
        .sum()
}

/// The f64 oracle and the naive same-dtype run on the given rows (the pair that sets the bar).
#[allow(clippy::too_many_arguments)]
fn references<T: Element>(
    q: &[T],
    k: &[T],
    v: &[T],
    qd: &TensorDesc,
    kd: &TensorDesc,
    mask: flashcore::Mask,
    scale: f64,
    rows: &[usize],
    dt: flashcore::DType,
) -> Result<(RefOutput, RefOutput)> {
    let strides = |d: &TensorDesc| d.strides.map(|x| x as usize);
    let qt = HostTensor::new(q, qd.shape, strides(qd))?;
    let kt = HostTensor::new(k, kd.shape, strides(kd))?;
    let vt = HostTensor::new(v, kd.shape, strides(kd))?;
    Ok((
        reference::attention(&qt, &kt, &vt, mask, scale, Some(rows), Precision::F64)?,
        reference::attention(&qt, &kt, &vt, mask, scale, Some(rows), Precision::Naive(dt))?,
    ))
}

/// (batch, kv head) groups whose gradients the backward check covers: every group when the
/// reference fits `budget` multiply-adds, else the first, the last and random others (at least
/// one). A group's gradients depend on nothing outside it, so each checked group is checked whole.
pub fn pick_groups(s: &Shape, budget: f64, seed: u64) -> Vec<(usize, usize)> {
    let heads_per_group = s.h / s.hkv();
    // The reference takes two passes over every head's Sq x Sk scores (rows, then keys), about
    // 8 multiply-adds per score and head-dim element.
    let per_group = 8.0 * (heads_per_group * s.sq * s.sk() * s.d) as f64;
    let total = s.b * s.hkv();
    let n = ((budget / per_group) as usize).clamp(1, total);
    let all: Vec<(usize, usize)> = (0..s.b).flat_map(|b| (0..s.hkv()).map(move |k| (b, k))).collect();
    if n >= total {
        return all;
    }
    let mut picked = vec![all[0], all[total - 1]];
    picked.truncate(n);
    let mut rng = SmallRng::seed_from_u64(seed);
    while picked.len() < n {
        let g = all[rng.random_range(0..total)];
        if !picked.contains(&g) {
            picked.push(g);
        }
    }
    picked.sort_unstable();
    picked
}

/// Runs one backward shape: the GPU forward for O and LSE, then the backward into NaN-poisoned
/// gradients, checked against the f64 backward on the picked groups with the 2x naive bar (each of
/// dq, dk, dv on its own); `err`/`naive` report the gradient closest to its bar. Times the backward.
pub fn run_shape_bwd(
    rt: &Runtime,
    s: &Shape,
    budget: f64,
    iters: usize,
    flush: &mut CudaSlice<u8>,
) -> Result<ShapeRun> {
    let seed = fresh_seed();
    let (qd, kd) = s.descs();
    let dt = s.dtype;
    let (qb, q) = random_input(rt, qd, dt, seed, 0)?;
    let (kb, k) = random_input(rt, kd, dt, seed, 1)?;
    let (vb, v) = random_input(rt, kd, dt, seed, 2)?;
    let (db, dout) = random_input(rt, qd, dt, seed, 3)?;
    // FLASHCORE_BENCH_DETERMINISTIC=1 times the deterministic mode (its cost: bench/NOTES.md).
    let deterministic = std::env::var("FLASHCORE_BENCH_DETERMINISTIC").is_ok_and(|v| v == "1");
    let opts = BwdOptions { mask: s.mask(), scale: None, deterministic, ..Default::default() };
    let (out, lse) = rt.forward(&q, &k, &v, &opts.forward())?;
    let lse = lse.ok_or_else(|| flashcore::Error::Unsupported("the forward returned no LSE".into()))?;
    let (dqd, dkvd) = (qd.like(), kd.like());
    let mut dq = rt.alloc_filled(dqd, nan_bits(dt))?;
    let mut dk = rt.alloc_filled(dkvd, nan_bits(dt))?;
    let mut dv = rt.alloc_filled(dkvd, nan_bits(dt))?;
    let variant = {
        let p = flashcore::api::check::check(&qd, &kd, &kd, &out.desc, &opts.forward())?;
        // The kernel the runtime runs (Variant::bwd_for_mode); where the deterministic mode is a
        // run-time flag of the same kernel, the name says so.
        let v = rt.plan_backward(&p)?.0;
        let run = v.bwd_for_mode(deterministic);
        if deterministic && run == v {
            format!("{v}-deterministic")
        } else {
            run.to_string()
        }
    };
    rt.backward_into(&q, &k, &v, &out, &dout, &lse, &mut dq, &mut dk, &mut dv, &opts)?;
    rt.synchronize()?;
    let (dqb, dkb, dvb) = (rt.download(&dq)?, rt.download(&dk)?, rt.download(&dv)?);
    let unwritten =
        count_unwritten(&dqb, &dqd, dt) + count_unwritten(&dkb, &dkvd, dt) + count_unwritten(&dvb, &dkvd, dt);

    let groups = pick_groups(s, budget, seed);
    let scale = 1.0 / (s.d as f64).sqrt();
    let (want, naive) = match dt {
        flashcore::DType::F16 => {
            let c = |x: &[u16]| -> Vec<half::f16> { x.reinterpret_cast::<half::f16>().to_vec() };
            bwd_references(&c(&qb), &c(&kb), &c(&vb), &c(&db), &qd, &kd, s.mask(), scale, &groups, dt)?
        }
        flashcore::DType::Bf16 => {
            let c = |x: &[u16]| -> Vec<half::bf16> { x.reinterpret_cast::<half::bf16>().to_vec() };
            bwd_references(&c(&qb), &c(&kb), &c(&vb), &c(&db), &qd, &kd, s.mask(), scale, &groups, dt)?
        }
        flashcore::DType::E4m3 => return Err(flashcore::Error::Unsupported("the backward takes no FP8 inputs".into())),
    };
    // The checked groups' values, GPU (by its strides) and reference (contiguous [B, S, H, D]).
    let heads_per_group = s.h / s.hkv();
    let gather = |bits: &[u16], desc: &TensorDesc, full: &[f64], nat: &[f64], query_side: bool| {
        let [_, seq, heads, d] = desc.shape;
        let (mut g, mut w, mut n) = (Vec::new(), Vec::new(), Vec::new());
        for &(bi, kh) in &groups {
            let hs = if query_side { kh * heads_per_group..(kh + 1) * heads_per_group } else { kh..kh + 1 };
            for hi in hs {
                for si in 0..seq {
                    let base = bi as i64 * desc.strides[0] + si as i64 * desc.strides[1] + hi as i64 * desc.strides[2];
                    let at = ((bi * seq + si) * heads + hi) * d;
                    g.extend((0..d).map(|x| dt.decode(bits[(base + x as i64) as usize])));
                    w.extend_from_slice(&full[at..at + d]);
                    n.extend_from_slice(&nat[at..at + d]);
                }
            }
        }
        (compare(&g, &w), compare(&n, &w))
    };
    let checks = [
        gather(&dqb, &dqd, &want.dq, &naive.dq, true),
        gather(&dkb, &dkvd, &want.dk, &naive.dk, false),
        gather(&dvb, &dkvd, &want.dv, &naive.dv, false),
    ];
    let passed = unwritten == 0 && checks.iter().all(|(e, en)| within_bar(e, en));
    let margin = |(e, en): &(ErrorStats, ErrorStats)| e.max_abs / (2.0 * en.max_abs + 1e-5);
    let worst = checks.iter().copied().max_by(|a, b| margin(a).total_cmp(&margin(b))).unwrap_or_default();

    let ms = if iters > 0 {
        time_median_ms(rt, flush, iters, || {
            rt.backward_into(&q, &k, &v, &out, &dout, &lse, &mut dq, &mut dk, &mut dv, &opts)
        })?
    } else {
        f64::NAN
    };
    Ok(ShapeRun {
        err: worst.0,
        naive: worst.1,
        lse_max_err: 0.0,
        unwritten,
        rows_checked: groups.len(),
        ms,
        passed,
        variant,
    })
}

/// The f64 backward and the naive same-dtype backward on the given groups (the pair that sets the bar).
#[allow(clippy::too_many_arguments)]
fn bwd_references<T: Element>(
    q: &[T],
    k: &[T],
    v: &[T],
    dout: &[T],
    qd: &TensorDesc,
    kd: &TensorDesc,
    mask: flashcore::Mask,
    scale: f64,
    groups: &[(usize, usize)],
    dt: flashcore::DType,
) -> Result<(RefGrads, RefGrads)> {
    let strides = |d: &TensorDesc| d.strides.map(|x| x as usize);
    let qt = HostTensor::new(q, qd.shape, strides(qd))?;
    let kt = HostTensor::new(k, kd.shape, strides(kd))?;
    let vt = HostTensor::new(v, kd.shape, strides(kd))?;
    let dt_ = HostTensor::new(dout, qd.shape, strides(qd))?;
    let run = |p| reference::attention_backward_at(&qt, &kt, &vt, &dt_, mask, scale, p, Some(groups));
    Ok((run(Precision::F64)?, run(Precision::Naive(dt))?))
}
