//! Running one shape on the GPU: fresh inputs, poisoned outputs, check against the f64 reference on
//! (sampled) rows, time with CUDA events and an L2 flush before every timed run.

use crate::data::{fresh_seed, from_bits, nan_bits, randn_bits};
use crate::shapes::Shape;
use flashcore::cudarc::driver::{sys, CudaSlice};
use flashcore::reference::{self, compare, within_bar, Element, ErrorStats, HostTensor, Precision, RefOutput};
use flashcore::{DeviceTensor, Result, Runtime, TensorDesc};
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
    let qb = randn_bits(qd.span().unwrap_or(0) as usize, dt, seed);
    let kb = randn_bits(kd.span().unwrap_or(0) as usize, dt, seed.wrapping_add(1));
    let vb = randn_bits(kd.span().unwrap_or(0) as usize, dt, seed.wrapping_add(2));
    let q = rt.upload(&qb, qd)?;
    let k = rt.upload(&kb, kd)?;
    let v = rt.upload(&vb, kd)?;
    let od = qd.like();
    let mut out: DeviceTensor = rt.alloc_filled(od, nan_bits(dt))?;
    let n_lse = s.b * s.h * s.sq;
    let mut lse: CudaSlice<f32> = rt.stream().clone_htod(&vec![f32::NAN; n_lse.max(1)])?;
    let opts = s.options();
    let variant = {
        let p = flashcore::api::check::check(&qd, &kd, &kd, &od, &opts)?;
        rt.plan(&p)?.0.to_string()
    };
    rt.forward_into(&q, &k, &v, &mut out, Some(&mut lse), &opts)?;
    rt.synchronize()?;
    let ob = rt.download(&out)?;
    let lse_h: Vec<f32> = rt.stream().clone_dtoh(&lse)?;

    // Every element must have been written over the poison.
    let unwritten = count_unwritten(&ob, &od, dt) + lse_h[..n_lse].iter().filter(|x| x.is_nan()).count();

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
    };
    // GPU values at the checked rows, in the reference's [B, rows, H, D] / [B, H, rows] order.
    let mut got = Vec::with_capacity(want.out.len());
    for bi in 0..s.b {
        for &r in &rows {
            for hi in 0..s.h {
                let base = bi as i64 * od.strides[0] + r as i64 * od.strides[1] + hi as i64 * od.strides[2];
                got.extend((0..s.d).map(|di| from_bits(ob[(base + di as i64) as usize], dt)));
            }
        }
    }
    let mut lse_err = 0f64;
    for bi in 0..s.b {
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

    let ms = if iters > 0 {
        time_median_ms(rt, flush, iters, || rt.forward_into(&q, &k, &v, &mut out, Some(&mut lse), &opts))?
    } else {
        f64::NAN
    };
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
                    bits[base..base + dd].iter().filter(|x| from_bits(**x, dt).is_nan()).count()
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
