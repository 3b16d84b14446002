//! FP8 (E4M3) forward on Hopper (issue 7): the e4m3 codec, host quantization (per tensor, per
//! (batch, head), per block of 128 rows), the random-sign Hadamard transform, the naive FP8 oracle
//! that sets the accuracy bar, and the runtime entry points.
//!
//! Inputs are e4m3 with fp32 descale factors (true value = e4m3 value x descale); both GEMMs run in
//! FP8 wgmma with fp32 accumulation; the output is bf16 or fp16 and the LSE fp32.
//! Descale granularities, each of q, k and v: per tensor, per (batch, head) or per block of 128
//! rows (keys for k and v: the kernel's key block).

use crate::api::args::{AttnOptions, DType, Problem, TensorDesc};
use crate::api::check::check;
use crate::error::{Error, Result};
use crate::runtime::RawTensor;
use cudarc::driver::CudaSlice;
use rayon::prelude::*;

/// Largest finite e4m3 value.
pub const E4M3_MAX: f32 = 448.0;
/// Rows of q (keys of k) that share one descale factor under [`Granularity::Block`]: the kernel's
/// key block, so a score block needs one factor.
pub const BLOCK_ROWS: usize = 128;

/// e4m3 (float8_e4m3fn: bias 7, no infinities, 0x7f / 0xff NaN) to f32.
pub fn e4m3_to_f32(b: u8) -> f32 {
    let sign = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let e = (b >> 3) & 0xf;
    let m = (b & 7) as f32;
    if b & 0x7f == 0x7f {
        return f32::NAN;
    }
    if e == 0 {
        sign * m * (2f32).powi(-9)
    } else {
        sign * (1.0 + m / 8.0) * (2f32).powi(e as i32 - 7)
    }
}

/// f32 to e4m3, rounded to nearest even and saturated to +-448 (PTX cvt.rn.satfinite); NaN stays NaN.
pub fn f32_to_e4m3(x: f32) -> u8 {
    let sign = if x.is_sign_negative() { 0x80u8 } else { 0 };
    if x.is_nan() {
        return 0x7f;
    }
    let a = x.abs() as f64;
    if a >= E4M3_MAX as f64 {
        return sign | 0x7e;
    }
    // Subnormals step by 2^-9 and run continuously into the first binade (code 8 = 2^-6).
    if a < (2f64).powi(-6) {
        return sign | (a * 512.0).round_ties_even() as u8;
    }
    let e = a.log2().floor() as i32;
    let mut e = e.clamp(-6, 8);
    // log2 may land one binade off near powers of two.
    if a < (2f64).powi(e) {
        e -= 1;
    } else if a >= (2f64).powi(e + 1) {
        e += 1;
    }
    let mut m = ((a / (2f64).powi(e) - 1.0) * 8.0).round_ties_even() as i32;
    if m == 8 {
        m = 0;
        e += 1;
    }
    let code = (((e + 7) as u32) << 3 | m as u32).min(0x7e) as u8;
    sign | code
}

/// Which values share one descale factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One factor for the tensor: fp32 [1].
    Tensor,
    /// One per (batch, head): fp32 [B, H] (H = the tensor's own heads).
    Head,
    /// One per (batch, head, block of [`BLOCK_ROWS`] rows): fp32 [B, H, ceil(S / 128)].
    Block,
}

impl Granularity {
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Tensor => "tensor",
            Granularity::Head => "head",
            Granularity::Block => "block",
        }
    }

    /// Factors for a [B, S, H, D] tensor.
    pub fn len(self, b: usize, s: usize, h: usize) -> usize {
        match self {
            Granularity::Tensor => 1,
            Granularity::Head => b * h,
            Granularity::Block => b * h * s.div_ceil(BLOCK_ROWS),
        }
    }

    /// Element strides of the factor array over (batch, head, block).
    pub fn strides(self, s: usize, h: usize) -> (i64, i64, i64) {
        match self {
            Granularity::Tensor => (0, 0, 0),
            Granularity::Head => (h as i64, 1, 0),
            Granularity::Block => {
                let nb = s.div_ceil(BLOCK_ROWS) as i64;
                (h as i64 * nb, nb, 1)
            }
        }
    }
}

impl std::str::FromStr for Granularity {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "tensor" => Ok(Granularity::Tensor),
            "head" => Ok(Granularity::Head),
            "block" => Ok(Granularity::Block),
            _ => Err(format!("unknown granularity `{s}` (expected tensor, head or block)")),
        }
    }
}

/// A tensor quantized on the host: e4m3 bytes in the input's [B, S, H, D] contiguous layout and
/// its descale factors.
#[derive(Clone, Debug)]
pub struct Quantized {
    pub bytes: Vec<u8>,
    pub descale: Vec<f32>,
    pub shape: [usize; 4],
    pub granularity: Granularity,
}

impl Quantized {
    /// The values the kernel sees: e4m3 x descale.
    pub fn dequantize(&self) -> Vec<f32> {
        let [_, s, h, d] = self.shape;
        let (sb, sh, sk) = self.granularity.strides(s, h);
        let mut out = vec![0f32; self.bytes.len()];
        for (i, o) in out.iter_mut().enumerate() {
            let (bi, si, hi) = (i / (s * h * d), i / (h * d) % s, i / d % h);
            let f = self.descale[(bi as i64 * sb + hi as i64 * sh + (si / BLOCK_ROWS) as i64 * sk) as usize];
            *o = e4m3_to_f32(self.bytes[i]) * f;
        }
        out
    }
}

/// Quantizes `x` ([B, S, H, D] contiguous) with one factor per group: descale = amax / 448, so the
/// group's largest magnitude maps to e4m3's largest finite value (1 for an all-zero group).
pub fn quantize(x: &[f32], shape: [usize; 4], g: Granularity) -> Quantized {
    let [b, s, h, d] = shape;
    let (sb, sh, sk) = g.strides(s, h);
    let idx = |i: usize| {
        let (bi, si, hi) = (i / (s * h * d), i / (h * d) % s, i / d % h);
        (bi as i64 * sb + hi as i64 * sh + (si / BLOCK_ROWS) as i64 * sk) as usize
    };
    // Every row of d values falls in one group: reduce rows in parallel, then groups.
    let row_max: Vec<(usize, f32)> = x
        .par_chunks(d.max(1))
        .enumerate()
        .map(|(r, row)| (idx(r * d), row.iter().fold(0f32, |m, v| m.max(v.abs()))))
        .collect();
    let mut amax = vec![0f32; g.len(b, s, h)];
    for (gi, m) in row_max {
        amax[gi] = amax[gi].max(m);
    }
    let descale: Vec<f32> = amax.iter().map(|a| if *a > 0.0 && a.is_finite() { a / E4M3_MAX } else { 1.0 }).collect();
    let mut bytes = vec![0u8; x.len()];
    bytes.par_chunks_mut(d.max(1)).zip(x.par_chunks(d.max(1))).enumerate().for_each(|(r, (out, row))| {
        let f = descale[idx(r * d)];
        for (o, v) in out.iter_mut().zip(row) {
            *o = f32_to_e4m3(v / f);
        }
    });
    Quantized { bytes, descale, shape, granularity: g }
}

/// Incoherent processing: x <- x · diag(signs) · H / sqrt(D) along the head dim (H the Walsh-Hadamard
/// matrix, D a power of two), in place. Applied to q and k with the same signs it leaves q·kᵀ
/// unchanged (the transform is orthogonal) while spreading an outlier over all D entries.
pub fn hadamard(x: &mut [f32], head_dim: usize, signs: &[f32]) {
    assert!(head_dim.is_power_of_two() && signs.len() == head_dim);
    let norm = 1.0 / (head_dim as f32).sqrt();
    x.par_chunks_mut(head_dim).for_each(|row| {
        for (v, s) in row.iter_mut().zip(signs) {
            *v *= s;
        }
        let mut len = 1;
        while len < head_dim {
            for i in (0..head_dim).step_by(2 * len) {
                for j in i..i + len {
                    let (a, b) = (row[j], row[j + len]);
                    row[j] = a + b;
                    row[j + len] = a - b;
                }
            }
            len *= 2;
        }
        for v in row.iter_mut() {
            *v *= norm;
        }
    });
}

/// What a plain FP8 implementation computes for one query row (the accuracy bar of the FP8 kernel,
/// as the naive same-dtype implementation is for the 16-bit ones): scores from the dequantized
/// inputs in fp32, P = exp(s - max) scaled by 2^p_log2 and rounded to e4m3, O = (P·V) in fp32 over
/// the dequantized V, divided by the fp32 row sum, rounded to the output dtype. `q` is one row of D
/// values, `k` and `v` Sk rows of D (the row's kv head), `visible(j)` the mask.
#[allow(clippy::too_many_arguments)]
pub fn naive_row(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    d: usize,
    scale: f32,
    p_log2: u32,
    out_dtype: DType,
    visible: impl Fn(usize) -> bool,
) -> Vec<f64> {
    let sk = k.len() / d;
    let s: Vec<f32> = (0..sk)
        .map(|j| {
            if visible(j) {
                q.iter().zip(&k[j * d..(j + 1) * d]).map(|(a, b)| a * b).sum::<f32>() * scale
            } else {
                f32::NEG_INFINITY
            }
        })
        .collect();
    let mx = s.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut out = vec![0f64; d];
    if mx == f32::NEG_INFINITY {
        return out;
    }
    let pscale = (2f32).powi(p_log2 as i32);
    let mut l = 0f32;
    let mut acc = vec![0f32; d];
    for (j, sj) in s.iter().enumerate() {
        let p = (sj - mx).exp() * pscale;
        l += p;
        let pq = e4m3_to_f32(f32_to_e4m3(p));
        if pq != 0.0 {
            for (a, vv) in acc.iter_mut().zip(&v[j * d..(j + 1) * d]) {
                *a += pq * vv;
            }
        }
    }
    for (o, a) in out.iter_mut().zip(&acc) {
        let x = a / l;
        *o = match out_dtype {
            DType::F16 => half::f16::from_f32(x).to_f64(),
            _ => half::bf16::from_f32(x).to_f64(),
        };
    }
    out
}

/// Where the descale factors of one input live on the device: fp32, laid out as the granularity says.
#[derive(Clone, Copy, Debug)]
pub struct Descale {
    pub ptr: u64,
    pub granularity: Granularity,
}

/// An e4m3 tensor on the device with its descale factors.
pub struct Fp8DeviceTensor {
    pub buf: CudaSlice<u8>,
    pub desc: TensorDesc,
    pub descale: CudaSlice<f32>,
    pub granularity: Granularity,
}

/// Checks an FP8 call: q, k, v e4m3 with the usual shape rules, out bf16 or fp16 shaped like q,
/// head dim 64, 128 or 256, descale granularities the kernel supports. Returns the problem (its
/// dtype is the output's).
pub fn check_fp8(
    q: &TensorDesc,
    k: &TensorDesc,
    v: &TensorDesc,
    out: &TensorDesc,
    descales: &[Descale; 3],
    opts: &AttnOptions,
) -> Result<Problem> {
    for (name, t) in [("q", q), ("k", k), ("v", v)] {
        if t.dtype != DType::E4m3 {
            return Err(Error::arg(name, format!("the FP8 forward takes e4m3 inputs, got {}", t.dtype.name())));
        }
    }
    if !matches!(out.dtype, DType::Bf16 | DType::F16) {
        return Err(Error::arg("out", format!("the FP8 forward writes bf16 or fp16, not {}", out.dtype.name())));
    }
    // The shape rules are the 16-bit path's: check with the output's dtype standing in.
    let as_out = |t: &TensorDesc| TensorDesc { dtype: out.dtype, ..*t };
    let p = check(&as_out(q), &as_out(k), &as_out(v), out, opts)?;
    if !matches!(p.head_dim, 64 | 128 | 256) {
        return Err(Error::arg("q", format!("head dim {} (the FP8 forward supports 64, 128 and 256)", p.head_dim)));
    }
    for (name, d) in [("q_descale", &descales[0]), ("k_descale", &descales[1]), ("v_descale", &descales[2])] {
        if d.ptr == 0 || d.ptr % 4 != 0 {
            return Err(Error::arg(name, "needs a 4-byte aligned device pointer to fp32 factors"));
        }
    }
    Ok(p)
}

/// TMA reads rows of 16-byte multiples: every stride of an e4m3 input (in bytes = elements) too.
pub(crate) fn check_fp8_alignment(name: &'static str, t: &RawTensor) -> Result<()> {
    if t.desc.numel() == 0 {
        return Ok(());
    }
    if t.ptr == 0 || t.ptr % 16 != 0 {
        return Err(Error::arg(name, format!("device pointer {:#x} is not 16-byte aligned", t.ptr)));
    }
    for (i, s) in t.desc.strides[..3].iter().enumerate() {
        if t.desc.shape[i] > 1 && s % 16 != 0 {
            return Err(Error::arg(name, format!("stride {s} of dim {i} is not a multiple of 16 bytes")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e4m3_round_trips_every_code() {
        for b in 0..=255u8 {
            let x = e4m3_to_f32(b);
            if x.is_nan() {
                assert_eq!(f32_to_e4m3(x) & 0x7f, 0x7f);
            } else if x == 0.0 {
                assert_eq!(e4m3_to_f32(f32_to_e4m3(x)), 0.0);
            } else {
                assert_eq!(f32_to_e4m3(x), b, "code {b:#x} = {x}");
            }
        }
        assert_eq!(e4m3_to_f32(0x7e), 448.0);
        assert_eq!(f32_to_e4m3(1e6), 0x7e);
        assert_eq!(f32_to_e4m3(-1e6), 0xfe);
        // 2^-10 is halfway between 0 and the smallest subnormal 2^-9: ties to even (0).
        assert_eq!(f32_to_e4m3((2f32).powi(-10)), 0);
        // 1 + 1/16 is halfway between 1 and 1.125: ties to even (1).
        assert_eq!(e4m3_to_f32(f32_to_e4m3(1.0625)), 1.0);
        assert_eq!(e4m3_to_f32(f32_to_e4m3(1.07)), 1.125);
    }

    #[test]
    fn quantize_maps_amax_to_448_per_group() {
        let shape = [1, 200, 2, 4];
        let x: Vec<f32> =
            (0..1600).map(|i| ((i * 37 % 101) as f32 - 50.0) * if i % 8 < 4 { 1.0 } else { 3.0 }).collect();
        for g in [Granularity::Tensor, Granularity::Head, Granularity::Block] {
            let qx = quantize(&x, shape, g);
            assert_eq!(qx.descale.len(), g.len(1, 200, 2));
            let back = qx.dequantize();
            for (a, b) in x.iter().zip(&back) {
                // Relative half-ulp of e4m3 (2^-4), or the subnormal step for small values.
                assert!((a - b).abs() <= a.abs() / 16.0 + qx.descale.iter().cloned().fold(0.0, f32::max) / 512.0);
            }
        }
    }

    #[test]
    fn check_names_the_bad_argument() {
        let e = |b, s, h, d| TensorDesc::contiguous_bshd(b, s, h, d, DType::E4m3);
        let out = TensorDesc::contiguous_bshd(1, 64, 2, 128, DType::Bf16);
        let ok = Descale { ptr: 256, granularity: Granularity::Tensor };
        let opts = AttnOptions::default();
        let arg_of = |r: Result<Problem>| match r {
            Err(Error::InvalidArg { arg, .. }) => arg,
            other => panic!("expected an argument error, got {other:?}"),
        };
        let q = e(1, 64, 2, 128);
        assert!(check_fp8(&q, &q, &q, &out, &[ok; 3], &opts).is_ok());
        let q16 = TensorDesc { dtype: DType::Bf16, ..q };
        assert_eq!(arg_of(check_fp8(&q16, &q, &q, &out, &[ok; 3], &opts)), "q");
        assert_eq!(arg_of(check_fp8(&q, &q, &q, &TensorDesc { dtype: DType::E4m3, ..out }, &[ok; 3], &opts)), "out");
        let (q96, o96) = (e(1, 64, 2, 96), TensorDesc::contiguous_bshd(1, 64, 2, 96, DType::Bf16));
        assert_eq!(arg_of(check_fp8(&q96, &q96, &q96, &o96, &[ok; 3], &opts)), "q");
        let block = Descale { ptr: 256, granularity: Granularity::Block };
        assert!(check_fp8(&q, &q, &q, &out, &[block; 3], &opts).is_ok());
        let misaligned = Descale { ptr: 258, granularity: Granularity::Block };
        assert_eq!(arg_of(check_fp8(&q, &q, &q, &out, &[ok, ok, misaligned], &opts)), "v_descale");
        let null = Descale { ptr: 0, granularity: Granularity::Tensor };
        assert_eq!(arg_of(check_fp8(&q, &q, &q, &out, &[ok, null, ok], &opts)), "k_descale");
        assert_eq!(arg_of(check_fp8(&q, &e(1, 64, 3, 128), &e(1, 64, 3, 128), &out, &[ok; 3], &opts)), "k");
    }

    #[test]
    fn hadamard_preserves_dot_products() {
        let d = 64;
        let signs: Vec<f32> = (0..d).map(|i| if (i * 7) % 3 == 0 { -1.0 } else { 1.0 }).collect();
        let mut a: Vec<f32> = (0..d).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut b: Vec<f32> =
            (0..d).map(|i| 0.01 * (i as f32 * 0.11).cos() + if i == 5 { 30.0 } else { 0.0 }).collect();
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
        let before = dot(&a, &b);
        hadamard(&mut a, d, &signs);
        hadamard(&mut b, d, &signs);
        assert!((dot(&a, &b) - before).abs() < 1e-3 * before.abs().max(1.0));
        // The outlier (30 at one entry) is spread evenly: every entry is 30 / sqrt(64) in magnitude, give or take the rest.
        assert!(b.iter().all(|x| (x.abs() - 30.0 / 8.0).abs() < 0.1));
    }
}
