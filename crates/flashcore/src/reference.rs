//! CPU attention: the f64 oracle of every test, the naive same-dtype implementation that sets the
//! accuracy bar, and the CPU execution path used for CPU tensors.
//!
//! Semantics match the GPU kernels exactly: masks from [`Mask::visible`], and a query row that
//! sees no key gets output 0 and LSE -inf.

use crate::api::args::{DType, Mask, Visibility};
use crate::error::{Error, Result};
use rayon::prelude::*;

/// Scalar types the reference reads.
pub trait Element: Copy + Send + Sync {
    fn to_f64(self) -> f64;
}
impl Element for f64 {
    fn to_f64(self) -> f64 {
        self
    }
}
impl Element for f32 {
    fn to_f64(self) -> f64 {
        self as f64
    }
}
impl Element for half::f16 {
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
}
impl Element for half::bf16 {
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
}

/// A host tensor in the logical [batch, seq, heads, head_dim] order with element strides.
#[derive(Clone, Copy, Debug)]
pub struct HostTensor<'a, T> {
    pub data: &'a [T],
    pub shape: [usize; 4],
    pub strides: [usize; 4],
}

impl<'a, T: Element> HostTensor<'a, T> {
    /// Row-major [B, S, H, D].
    pub fn bshd(data: &'a [T], shape: [usize; 4]) -> Result<Self> {
        let [_, s, h, d] = shape;
        HostTensor::new(data, shape, [s * h * d, h * d, d, 1])
    }

    pub fn new(data: &'a [T], shape: [usize; 4], strides: [usize; 4]) -> Result<Self> {
        if shape.iter().product::<usize>() > 0 {
            let span = 1 + shape.iter().zip(strides.iter()).map(|(n, s)| (n - 1) * s).sum::<usize>();
            if data.len() < span {
                return Err(Error::arg("data", format!("{} elements, shape/strides span {span}", data.len())));
            }
        }
        Ok(HostTensor { data, shape, strides })
    }

    #[inline]
    fn row(&self, b: usize, s: usize, h: usize) -> impl Iterator<Item = f64> + '_ {
        let base = b * self.strides[0] + s * self.strides[1] + h * self.strides[2];
        (0..self.shape[3]).map(move |d| self.data[base + d * self.strides[3]].to_f64())
    }
}

/// Output of a reference run over a set of query rows.
#[derive(Clone, Debug)]
pub struct RefOutput {
    /// The query rows computed (all rows unless sampled).
    pub rows: Vec<usize>,
    /// [B, rows.len(), H, D], contiguous.
    pub out: Vec<f64>,
    /// [B, H, rows.len()], natural log; -inf for a row that sees no key.
    pub lse: Vec<f64>,
}

/// How the reference computes one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// f64 everywhere: the oracle.
    F64,
    /// A plain same-dtype implementation: fp32 dot products rounded to the dtype, softmax in fp32
    /// with P rounded to the dtype, P·V accumulated in fp32 and rounded to the dtype. Its error
    /// against F64 sets the bar a kernel must meet (FlashAttention's test method).
    Naive(DType),
}

fn round(x: f32, dt: DType) -> f32 {
    match dt {
        DType::F16 => half::f16::from_f32(x).to_f32(),
        DType::Bf16 => half::bf16::from_f32(x).to_f32(),
        DType::E4m3 => crate::fp8::e4m3_to_f32(crate::fp8::f32_to_e4m3(x)),
    }
}

/// q, k and v agree (batch, head dim, k = v) and the query heads are a multiple of the key/value
/// heads; returns q's and k's shapes.
fn check_shapes<T: Element>(
    q: &HostTensor<T>,
    k: &HostTensor<T>,
    v: &HostTensor<T>,
) -> Result<([usize; 4], [usize; 4])> {
    let [b, _, h, d] = q.shape;
    let [bk, _, hk, dk] = k.shape;
    if bk != b || dk != d || v.shape != k.shape {
        return Err(Error::arg("k", format!("shapes q {:?}, k {:?}, v {:?} do not agree", q.shape, k.shape, v.shape)));
    }
    if hk == 0 || h % hk != 0 {
        return Err(Error::arg("k", format!("query heads ({h}) must be a multiple of key/value heads ({hk})")));
    }
    Ok((q.shape, k.shape))
}

/// Attention on the CPU for the given query rows (None = all), multithreaded over rows.
pub fn attention<T: Element>(
    q: &HostTensor<T>,
    k: &HostTensor<T>,
    v: &HostTensor<T>,
    mask: Mask,
    scale: f64,
    rows: Option<&[usize]>,
    precision: Precision,
) -> Result<RefOutput> {
    attention_scored(q, k, v, Scoring { vis: mask.into(), softcap: None }, scale, rows, precision)
}

/// How scores become logits: which keys a query sees (mask and window) and the optional logit
/// softcap (logit = cap·tanh(s·scale / cap) instead of s·scale).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scoring {
    pub vis: Visibility,
    pub softcap: Option<f32>,
}

impl Scoring {
    pub fn of(p: &crate::api::args::Problem) -> Scoring {
        Scoring { vis: p.visibility(), softcap: p.softcap }
    }
}

impl From<Visibility> for Scoring {
    fn from(vis: Visibility) -> Scoring {
        Scoring { vis, softcap: None }
    }
}

impl From<Mask> for Scoring {
    fn from(mask: Mask) -> Scoring {
        Scoring { vis: mask.into(), softcap: None }
    }
}

/// [`attention`] with a window and softcap.
pub fn attention_scored<T: Element>(
    q: &HostTensor<T>,
    k: &HostTensor<T>,
    v: &HostTensor<T>,
    scoring: Scoring,
    scale: f64,
    rows: Option<&[usize]>,
    precision: Precision,
) -> Result<RefOutput> {
    let Scoring { vis, softcap } = scoring;
    let ([b, sq, h, d], [_, sk, hk, _]) = check_shapes(q, k, v)?;
    let rows: Vec<usize> = match rows {
        Some(r) => {
            if let Some(bad) = r.iter().find(|&&i| i >= sq) {
                return Err(Error::arg("rows", format!("row {bad} out of range (Sq = {sq})")));
            }
            r.to_vec()
        }
        None => (0..sq).collect(),
    };
    let nr = rows.len();
    let group = h / hk;
    let mut out = vec![0f64; b * nr * h * d];
    let mut lse = vec![f64::NEG_INFINITY; b * h * nr];
    if d == 0 {
        return Ok(RefOutput { rows, out, lse });
    }
    // out chunk index = (bi * nr + ri) * h + hi
    let lse_rows: Vec<(usize, f64)> = out
        .par_chunks_mut(d)
        .enumerate()
        .map(|(idx, o)| {
            let hi = idx % h;
            let ri = (idx / h) % nr;
            let bi = idx / (h * nr);
            let i = rows[ri];
            let kh = hi / group;
            let qrow: Vec<f64> = q.row(bi, i, hi).collect();
            let visible = (0..sk).filter(|&j| vis.visible(i, j, sq, sk));
            let l = match precision {
                Precision::F64 => row_f64(&qrow, k, v, bi, kh, visible, scale, softcap.map(f64::from), o),
                Precision::Naive(dt) => row_naive(&qrow, k, v, bi, kh, visible, scale as f32, softcap, dt, o),
            };
            ((bi * h + hi) * nr + ri, l)
        })
        .collect();
    for (i, l) in lse_rows {
        lse[i] = l;
    }
    Ok(RefOutput { rows, out, lse })
}

#[allow(clippy::too_many_arguments)]
fn row_f64<T: Element>(
    qrow: &[f64],
    k: &HostTensor<T>,
    v: &HostTensor<T>,
    b: usize,
    kh: usize,
    visible: impl Iterator<Item = usize>,
    scale: f64,
    softcap: Option<f64>,
    o: &mut [f64],
) -> f64 {
    let keys: Vec<usize> = visible.collect();
    if keys.is_empty() {
        o.fill(0.0);
        return f64::NEG_INFINITY;
    }
    let logit = |x: f64| softcap.map_or(x, |c| c * (x / c).tanh());
    let s: Vec<f64> =
        keys.iter().map(|&j| logit(scale * k.row(b, j, kh).zip(qrow).map(|(x, y)| x * y).sum::<f64>())).collect();
    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let p: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
    let l: f64 = p.iter().sum();
    o.fill(0.0);
    for (pj, &j) in p.iter().zip(&keys) {
        for (od, vd) in o.iter_mut().zip(v.row(b, j, kh)) {
            *od += pj * vd;
        }
    }
    o.iter_mut().for_each(|x| *x /= l);
    m + l.ln()
}

#[allow(clippy::too_many_arguments)]
fn row_naive<T: Element>(
    qrow: &[f64],
    k: &HostTensor<T>,
    v: &HostTensor<T>,
    b: usize,
    kh: usize,
    visible: impl Iterator<Item = usize>,
    scale: f32,
    softcap: Option<f32>,
    dt: DType,
    o: &mut [f64],
) -> f64 {
    let keys: Vec<usize> = visible.collect();
    if keys.is_empty() {
        o.fill(0.0);
        return f64::NEG_INFINITY;
    }
    let q32: Vec<f32> = qrow.iter().map(|&x| x as f32).collect();
    let s: Vec<f32> = keys
        .iter()
        .map(|&j| {
            let dot: f32 = k.row(b, j, kh).zip(&q32).map(|(x, y)| x as f32 * y).sum();
            let x = round(round(dot, dt) * scale, dt);
            softcap.map_or(x, |c| round(c * (x / c).tanh(), dt))
        })
        .collect();
    let m = s.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = s.iter().map(|x| (x - m).exp()).collect();
    let l: f32 = e.iter().sum();
    let mut acc = vec![0f32; o.len()];
    for (ej, &j) in e.iter().zip(&keys) {
        let pj = round(ej / l, dt);
        for (a, vd) in acc.iter_mut().zip(v.row(b, j, kh)) {
            *a += pj * vd as f32;
        }
    }
    for (od, a) in o.iter_mut().zip(acc) {
        *od = round(a, dt) as f64;
    }
    (m + l.ln()) as f64
}

/// Error statistics of `got` against `want` (element-wise, same length).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ErrorStats {
    pub max_abs: f64,
    /// ‖got − want‖₂ / ‖want‖₂
    pub rel_l2: f64,
    /// Elements that are NaN in `got` but not in `want` (e.g. never written over the NaN poison).
    pub nan_count: usize,
}

pub fn compare(got: &[f64], want: &[f64]) -> ErrorStats {
    let mut st = ErrorStats::default();
    let (mut num, mut den) = (0.0, 0.0);
    for (g, w) in got.iter().zip(want) {
        if g.is_nan() && !w.is_nan() {
            st.nan_count += 1;
            continue;
        }
        let e = (g - w).abs();
        if e.is_finite() {
            st.max_abs = st.max_abs.max(e);
            num += e * e;
        } else if g != w {
            st.max_abs = f64::INFINITY;
        }
        if w.is_finite() {
            den += w * w;
        }
    }
    st.rel_l2 = if den > 0.0 { (num / den).sqrt() } else { num.sqrt() };
    st
}

/// FlashAttention's accuracy bar: kernel max error <= 2 x naive max error + 1e-5.
pub fn within_bar(kernel: &ErrorStats, naive: &ErrorStats) -> bool {
    kernel.nan_count == 0 && kernel.max_abs <= 2.0 * naive.max_abs + 1e-5
}

/// Gradients of attention with respect to q, k and v, in f64, laid out [B, S, H, D] contiguous
/// (dk and dv with the key/value heads).
#[derive(Clone, Debug)]
pub struct RefGrads {
    pub dq: Vec<f64>,
    pub dk: Vec<f64>,
    pub dv: Vec<f64>,
}

/// The oracle of the backward kernels: for the loss L = sum(out * dout),
///   P = softmax(scale q kᵀ) over visible keys, dV = Pᵀ dO, dP = dO Vᵀ,
///   dS = P ∘ (dP − rowsum(dO ∘ O)), dQ = scale dS K, dK = scale dSᵀ Q.
/// With a softcap the logits are c·tanh(scale q kᵀ / c) and dS also carries 1 − tanh².
/// For a GQA group the key/value gradients are summed over the group's query heads; a query row
/// that sees no key contributes nothing. `scoring` is a [`Mask`], a whole [`Visibility`] (mask and
/// sliding window) or a [`Scoring`] (with a softcap).
pub fn attention_backward<T: Element>(
    q: &HostTensor<T>,
    k: &HostTensor<T>,
    v: &HostTensor<T>,
    dout: &HostTensor<T>,
    scoring: impl Into<Scoring>,
    scale: f64,
) -> Result<RefGrads> {
    attention_backward_at(q, k, v, dout, scoring, scale, Precision::F64, None)
}

/// [`attention_backward`] at a given precision, for all (batch, kv head) groups or only the listed
/// ones (the gradients of one group depend on nothing outside it, so checking a sample of groups
/// checks whole rows exactly while skipping most of the O(Sq·Sk·D) work). Gradients are laid out as
/// in [`RefGrads`]; entries of groups not computed stay 0.
///
/// `Precision::Naive(dt)` is what a plain same-dtype implementation (PyTorch's math path) computes:
/// S, the capped logits, P, dP and dS each rounded to the dtype (and tanh's backward, with a
/// softcap), D = rowsum(dP ∘ P) as softmax's backward takes it,
/// matmuls accumulated in fp32 and rounded once, and GQA's per-head dK/dV rounded before their
/// sum. Its error against F64 sets the bar for the backward kernels.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_at<T: Element>(
    q: &HostTensor<T>,
    k: &HostTensor<T>,
    v: &HostTensor<T>,
    dout: &HostTensor<T>,
    scoring: impl Into<Scoring>,
    scale: f64,
    precision: Precision,
    groups: Option<&[(usize, usize)]>,
) -> Result<RefGrads> {
    let Scoring { vis: mask, softcap } = scoring.into();
    let ([b, sq, h, d], [_, sk, hk, _]) = check_shapes(q, k, v)?;
    if dout.shape != q.shape {
        return Err(Error::arg("dout", format!("shape {:?} differs from q's {:?}", dout.shape, q.shape)));
    }
    let tasks: Vec<(usize, usize)> = match groups {
        Some(g) => {
            if let Some(bad) = g.iter().find(|(bi, kh)| *bi >= b || *kh >= hk) {
                return Err(Error::arg("groups", format!("{bad:?} out of range (B = {b}, kv heads = {hk})")));
            }
            g.to_vec()
        }
        None => (0..b).flat_map(|bi| (0..hk).map(move |kh| (bi, kh))).collect(),
    };
    let group = h / hk;
    /// What one (batch, kv head) task produces: its dk and dv rows, and (head, row, dq row) triples.
    struct Part {
        bi: usize,
        kh: usize,
        dk: Vec<f64>,
        dv: Vec<f64>,
        dq: Vec<(usize, usize, Vec<f64>)>,
    }
    // One task per (batch, kv head): it owns its dk/dv rows and the dq rows of its query heads. Each
    // head takes two passes, each parallel: over query rows (softmax statistics, D and dq), then over
    // keys (dk and dv, recomputing P from the row statistics), so no Sq x Sk matrix is kept and one
    // group alone still uses every core.
    let parts: Vec<Part> = tasks
        .into_par_iter()
        .map(|(bi, kh)| {
            let kr: Vec<Vec<f64>> = (0..sk).map(|j| k.row(bi, j, kh).collect()).collect();
            let vr: Vec<Vec<f64>> = (0..sk).map(|j| v.row(bi, j, kh).collect()).collect();
            let heads = kh * group..(kh + 1) * group;
            let rows_of = |t: &HostTensor<T>, hi: usize| -> Vec<Vec<f64>> {
                (0..sq).map(|i| t.row(bi, i, hi).collect()).collect()
            };
            let mut dqs = Vec::new();
            let (dkh, dvh) = match precision {
                Precision::F64 => {
                    let (mut dkh, mut dvh) = (vec![0.0; sk * d], vec![0.0; sk * d]);
                    for hi in heads {
                        let (qr, dor) = (rows_of(q, hi), rows_of(dout, hi));
                        let stats: Vec<(RowStats<f64>, Vec<f64>)> = (0..sq)
                            .into_par_iter()
                            .map(|i| {
                                let keys: Vec<usize> = (0..sk).filter(|&j| mask.visible(i, j, sq, sk)).collect();
                                row_backward_f64(&qr[i], &dor[i], &kr, &vr, &keys, scale, softcap.map(f64::from))
                            })
                            .collect();
                        let kv: Vec<(Vec<f64>, Vec<f64>)> = (0..sk)
                            .into_par_iter()
                            .map(|j| {
                                let rows = (0..sq).filter(|&i| mask.visible(i, j, sq, sk));
                                key_backward_f64(&kr[j], &vr[j], &qr, &dor, rows, &stats, scale, softcap.map(f64::from))
                            })
                            .collect();
                        for (j, (dkj, dvj)) in kv.into_iter().enumerate() {
                            dkh[j * d..(j + 1) * d].iter_mut().zip(dkj).for_each(|(a, x)| *a += x);
                            dvh[j * d..(j + 1) * d].iter_mut().zip(dvj).for_each(|(a, x)| *a += x);
                        }
                        dqs.extend(stats.into_iter().enumerate().map(|(i, (_, dq))| (hi, i, dq)));
                    }
                    (dkh, dvh)
                }
                Precision::Naive(dt) => {
                    let (k32, v32) = (to_f32_rows(&kr), to_f32_rows(&vr));
                    let (mut dk32, mut dv32) = (vec![0f32; sk * d], vec![0f32; sk * d]);
                    for hi in heads {
                        let (qr, dor) = (to_f32_rows(&rows_of(q, hi)), to_f32_rows(&rows_of(dout, hi)));
                        let stats: Vec<(RowStats<f32>, Vec<f64>)> = (0..sq)
                            .into_par_iter()
                            .map(|i| {
                                let keys: Vec<usize> = (0..sk).filter(|&j| mask.visible(i, j, sq, sk)).collect();
                                row_backward_naive(&qr[i], &dor[i], &k32, &v32, &keys, scale as f32, softcap, dt)
                            })
                            .collect();
                        // One head's dK and dV, each accumulated in fp32 over the query rows and
                        // rounded once, as a same-dtype matmul does; then summed over the group.
                        let kv: Vec<(Vec<f32>, Vec<f32>)> = (0..sk)
                            .into_par_iter()
                            .map(|j| {
                                let rows = (0..sq).filter(|&i| mask.visible(i, j, sq, sk));
                                key_backward_naive(&k32[j], &v32[j], &qr, &dor, rows, &stats, scale as f32, softcap, dt)
                            })
                            .collect();
                        for (j, (dkj, dvj)) in kv.into_iter().enumerate() {
                            dk32[j * d..(j + 1) * d].iter_mut().zip(dkj).for_each(|(a, x)| *a += round(x, dt));
                            dv32[j * d..(j + 1) * d].iter_mut().zip(dvj).for_each(|(a, x)| *a += round(x, dt));
                        }
                        dqs.extend(stats.into_iter().enumerate().map(|(i, (_, dq))| (hi, i, dq)));
                    }
                    (
                        dk32.iter().map(|x| round(*x, dt) as f64).collect(),
                        dv32.iter().map(|x| round(*x, dt) as f64).collect(),
                    )
                }
            };
            Part { bi, kh, dk: dkh, dv: dvh, dq: dqs }
        })
        .collect();
    let mut g =
        RefGrads { dq: vec![0.0; b * sq * h * d], dk: vec![0.0; b * sk * hk * d], dv: vec![0.0; b * sk * hk * d] };
    for p in parts {
        for j in 0..sk {
            let at = ((p.bi * sk + j) * hk + p.kh) * d;
            g.dk[at..at + d].copy_from_slice(&p.dk[j * d..(j + 1) * d]);
            g.dv[at..at + d].copy_from_slice(&p.dv[j * d..(j + 1) * d]);
        }
        for (hi, i, dqi) in p.dq {
            let at = ((p.bi * sq + i) * h + hi) * d;
            g.dq[at..at + d].copy_from_slice(&dqi);
        }
    }
    Ok(g)
}

fn to_f32_rows(rows: &[Vec<f64>]) -> Vec<Vec<f32>> {
    rows.iter().map(|r| r.iter().map(|x| *x as f32).collect()).collect()
}

/// What the key pass needs of one query row: P_ij = exp(s_ij − m) / l, and D (the row's
/// rowsum(dO ∘ O), or for the naive run rowsum(dP ∘ P)). m is −inf for a row that sees no key.
#[derive(Clone, Copy, Debug)]
struct RowStats<F> {
    m: F,
    l: F,
    d: F,
}

/// Row pass of the f64 backward: the row's softmax statistics and D, and its dq.
fn row_backward_f64(
    qi: &[f64],
    doi: &[f64],
    kr: &[Vec<f64>],
    vr: &[Vec<f64>],
    keys: &[usize],
    scale: f64,
    cap: Option<f64>,
) -> (RowStats<f64>, Vec<f64>) {
    let d = qi.len();
    let mut dqi = vec![0.0; d];
    if keys.is_empty() {
        return (RowStats { m: f64::NEG_INFINITY, l: 0.0, d: 0.0 }, dqi);
    }
    // (logit, its derivative by the scaled score) per visible key, as the naive twin computes them.
    let sc: Vec<(f64, f64)> =
        keys.iter().map(|&j| logit_f64(scale * kr[j].iter().zip(qi).map(|(x, y)| x * y).sum::<f64>(), cap)).collect();
    let s: Vec<f64> = sc.iter().map(|x| x.0).collect();
    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
    let l: f64 = e.iter().sum();
    let p: Vec<f64> = e.iter().map(|x| x / l).collect();
    // D_i = dO_i · O_i, with O_i = Σ_j p_j v_j.
    let mut oi = vec![0.0; d];
    for (pj, &j) in p.iter().zip(keys) {
        for (o, x) in oi.iter_mut().zip(&vr[j]) {
            *o += pj * x;
        }
    }
    let di: f64 = doi.iter().zip(&oi).map(|(x, y)| x * y).sum();
    for ((pj, &j), (_, dl)) in p.iter().zip(keys).zip(&sc) {
        let dp: f64 = doi.iter().zip(&vr[j]).map(|(x, y)| x * y).sum();
        let ds = pj * (dp - di) * dl;
        for x in 0..d {
            dqi[x] += scale * ds * kr[j][x];
        }
    }
    (RowStats { m, l, d: di }, dqi)
}

/// A scaled score's logit and the logit's derivative by it: (c·tanh(x/c), 1 − tanh²(x/c)) with a
/// softcap c, else (x, 1).
fn logit_f64(x: f64, cap: Option<f64>) -> (f64, f64) {
    match cap {
        Some(c) => {
            let t = (x / c).tanh();
            (c * t, 1.0 - t * t)
        }
        None => (x, 1.0),
    }
}

/// The naive logit in the dtype (the capped value rounded, as a same-dtype tanh gives it) and
/// tanh's derivative 1 − t² as the dtype's tanh backward computes it, from the rounded t.
fn logit_naive(x: f32, cap: Option<f32>, dt: DType) -> (f32, f32) {
    match cap {
        Some(c) => {
            let t = round((x / c).tanh(), dt);
            (round(c * t, dt), 1.0 - t * t)
        }
        None => (x, 1.0),
    }
}

/// Key pass of the f64 backward: key j's dk and dv over the query rows that see it.
#[allow(clippy::too_many_arguments)]
fn key_backward_f64(
    kj: &[f64],
    vj: &[f64],
    qr: &[Vec<f64>],
    dor: &[Vec<f64>],
    rows: impl Iterator<Item = usize>,
    stats: &[(RowStats<f64>, Vec<f64>)],
    scale: f64,
    cap: Option<f64>,
) -> (Vec<f64>, Vec<f64>) {
    let d = kj.len();
    let (mut dk, mut dv) = (vec![0.0; d], vec![0.0; d]);
    for i in rows {
        let st = stats[i].0;
        let (s, ds_dx) = logit_f64(scale * kj.iter().zip(&qr[i]).map(|(x, y)| x * y).sum::<f64>(), cap);
        let p = (s - st.m).exp() / st.l;
        let dp: f64 = dor[i].iter().zip(vj).map(|(x, y)| x * y).sum();
        let ds = p * (dp - st.d) * ds_dx;
        for x in 0..d {
            dv[x] += p * dor[i][x];
            dk[x] += scale * ds * qr[i][x];
        }
    }
    (dk, dv)
}

fn dot32(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Row pass of the naive same-dtype backward (see [`attention_backward_at`]): statistics and dq,
/// rounded to the dtype.
#[allow(clippy::too_many_arguments)]
fn row_backward_naive(
    qi: &[f32],
    doi: &[f32],
    kr: &[Vec<f32>],
    vr: &[Vec<f32>],
    keys: &[usize],
    scale: f32,
    cap: Option<f32>,
    dt: DType,
) -> (RowStats<f32>, Vec<f64>) {
    let d = qi.len();
    if keys.is_empty() {
        return (RowStats { m: f32::NEG_INFINITY, l: 0.0, d: 0.0 }, vec![0.0; d]);
    }
    let sc: Vec<(f32, f32)> =
        keys.iter().map(|&j| logit_naive(round(round(dot32(&kr[j], qi), dt) * scale, dt), cap, dt)).collect();
    let s: Vec<f32> = sc.iter().map(|x| x.0).collect();
    let m = s.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = s.iter().map(|x| (x - m).exp()).collect();
    let l: f32 = e.iter().sum();
    let p: Vec<f32> = e.iter().map(|x| round(x / l, dt)).collect();
    let dp: Vec<f32> = keys.iter().map(|&j| round(dot32(doi, &vr[j]), dt)).collect();
    let sum: f32 = p.iter().zip(&dp).map(|(a, b)| a * b).sum();
    let mut dqi = vec![0f32; d];
    for (((pj, dpj), &j), (_, dl)) in p.iter().zip(&dp).zip(keys).zip(&sc) {
        let ds = round(round(round(pj * (dpj - sum), dt) * dl, dt) * scale, dt);
        for x in 0..d {
            dqi[x] += ds * kr[j][x];
        }
    }
    (RowStats { m, l, d: sum }, dqi.iter().map(|x| round(*x, dt) as f64).collect())
}

/// Key pass of the naive backward: key j's dk and dv in fp32 over the rows that see it (the same
/// rounded P, dP and dS as the row pass), not yet rounded.
#[allow(clippy::too_many_arguments)]
fn key_backward_naive(
    kj: &[f32],
    vj: &[f32],
    qr: &[Vec<f32>],
    dor: &[Vec<f32>],
    rows: impl Iterator<Item = usize>,
    stats: &[(RowStats<f32>, Vec<f64>)],
    scale: f32,
    cap: Option<f32>,
    dt: DType,
) -> (Vec<f32>, Vec<f32>) {
    let d = kj.len();
    let (mut dk, mut dv) = (vec![0f32; d], vec![0f32; d]);
    for i in rows {
        let st = stats[i].0;
        let (s, dl) = logit_naive(round(round(dot32(kj, &qr[i]), dt) * scale, dt), cap, dt);
        let p = round((s - st.m).exp() / st.l, dt);
        let dp = round(dot32(&dor[i], vj), dt);
        let ds = round(round(round(p * (dp - st.d), dt) * dl, dt) * scale, dt);
        for x in 0..d {
            dv[x] += p * dor[i][x];
            dk[x] += ds * qr[i][x];
        }
    }
    (dk, dv)
}
