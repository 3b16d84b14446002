//! Validation of the CPU path without a GPU: the multithreaded reference against a dense,
//! single-threaded textbook implementation written independently here (materialised score matrix).

use crate::data::{fresh_seed, randn_bits};
use flashcore::reference::{self, HostTensor, Precision};
use flashcore::{DType, Mask};
use half::slice::HalfBitsSliceExt;

struct Case {
    b: usize,
    h: usize,
    hkv: usize,
    sq: usize,
    sk: usize,
    d: usize,
    mask: Mask,
}

/// Dense reference: full S matrix per (b, h), masked, softmax, times V. BSHD contiguous inputs.
fn dense(q: &[f64], k: &[f64], v: &[f64], c: &Case, scale: f64) -> Vec<f64> {
    let mut out = vec![0.0; c.b * c.sq * c.h * c.d];
    for b in 0..c.b {
        for h in 0..c.h {
            let kh = h / (c.h / c.hkv);
            for i in 0..c.sq {
                let mut s = vec![f64::NEG_INFINITY; c.sk];
                for (j, sj) in s.iter_mut().enumerate() {
                    let allowed = match c.mask {
                        Mask::None => true,
                        Mask::CausalTopLeft => j <= i,
                        Mask::CausalBottomRight => j + c.sq <= i + c.sk,
                    };
                    if allowed {
                        let mut dot = 0.0;
                        for x in 0..c.d {
                            dot += q[((b * c.sq + i) * c.h + h) * c.d + x] * k[((b * c.sk + j) * c.hkv + kh) * c.d + x];
                        }
                        *sj = dot * scale;
                    }
                }
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if m == f64::NEG_INFINITY {
                    continue;
                }
                let p: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let l: f64 = p.iter().sum();
                for x in 0..c.d {
                    let mut acc = 0.0;
                    for (j, pj) in p.iter().enumerate() {
                        acc += pj * v[((b * c.sk + j) * c.hkv + kh) * c.d + x];
                    }
                    out[((b * c.sq + i) * c.h + h) * c.d + x] = acc / l;
                }
            }
        }
    }
    out
}

pub fn validate() -> i32 {
    let cases = [
        Case { b: 2, h: 4, hkv: 4, sq: 33, sk: 33, d: 64, mask: Mask::None },
        Case { b: 1, h: 8, hkv: 2, sq: 65, sk: 65, d: 32, mask: Mask::CausalTopLeft },
        Case { b: 2, h: 2, hkv: 1, sq: 17, sk: 100, d: 16, mask: Mask::CausalBottomRight },
        Case { b: 1, h: 3, hkv: 3, sq: 100, sk: 17, d: 48, mask: Mask::CausalBottomRight },
        Case { b: 1, h: 2, hkv: 2, sq: 1, sk: 300, d: 128, mask: Mask::CausalTopLeft },
    ];
    let seed = fresh_seed();
    let mut failed = 0;
    println!("{:<44} {:>10} {:>6}", "case (bf16 inputs)", "max_err", "ok");
    for (ci, c) in cases.iter().enumerate() {
        let nq = c.b * c.sq * c.h * c.d;
        let nk = c.b * c.sk * c.hkv * c.d;
        let s0 = seed.wrapping_add(ci as u64 * 3);
        let (qb, kb, vb) =
            (randn_bits(nq, DType::Bf16, s0), randn_bits(nk, DType::Bf16, s0 + 1), randn_bits(nk, DType::Bf16, s0 + 2));
        let (q, k, v) = (
            qb.reinterpret_cast::<half::bf16>(),
            kb.reinterpret_cast::<half::bf16>(),
            vb.reinterpret_cast::<half::bf16>(),
        );
        let scale = 1.0 / (c.d as f64).sqrt();
        let got = (|| -> flashcore::Result<Vec<f64>> {
            let qt = HostTensor::bshd(q, [c.b, c.sq, c.h, c.d])?;
            let kt = HostTensor::bshd(k, [c.b, c.sk, c.hkv, c.d])?;
            let vt = HostTensor::bshd(v, [c.b, c.sk, c.hkv, c.d])?;
            Ok(reference::attention(&qt, &kt, &vt, c.mask, scale, None, Precision::F64)?.out)
        })();
        let f = |x: &[half::bf16]| x.iter().map(|y| y.to_f64()).collect::<Vec<_>>();
        let want = dense(&f(q), &f(k), &f(v), c, scale);
        let label = format!("B{} H{}/{} Sq{} Sk{} D{} {}", c.b, c.h, c.hkv, c.sq, c.sk, c.d, c.mask.name());
        match got {
            Ok(got) => {
                let e = reference::compare(&got, &want);
                let ok = e.nan_count == 0 && e.max_abs <= 1e-12;
                failed += usize::from(!ok);
                println!("{label:<44} {:>10.2e} {:>6}", e.max_abs, if ok { "pass" } else { "FAIL" });
            }
            Err(e) => {
                failed += 1;
                println!("{label:<44} FAIL: {e}");
            }
        }
    }
    println!("{} cases, {} failed (CPU path only: no CUDA device)", cases.len(), failed);
    i32::from(failed > 0)
}
