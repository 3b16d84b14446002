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

/// Dense backward for L = sum(out * dout): per (b, h) the full P matrix, dV = Pᵀ dO, dP = dO Vᵀ,
/// dS = P ∘ (dP − rowsum(dP ∘ P)), dQ = scale dS K, dK = scale dSᵀ Q; GQA summed over the group.
/// BSHD contiguous inputs; returns (dq, dk, dv).
fn dense_backward(q: &[f64], k: &[f64], v: &[f64], dout: &[f64], c: &Case, scale: f64) -> [Vec<f64>; 3] {
    let (mut dq, mut dk, mut dv) =
        (vec![0.0; q.len()], vec![0.0; c.b * c.sk * c.hkv * c.d], vec![0.0; c.b * c.sk * c.hkv * c.d]);
    let (qi, ki) = (
        |b: usize, s: usize, h: usize| ((b * c.sq + s) * c.h + h) * c.d,
        |b: usize, s: usize, h: usize| ((b * c.sk + s) * c.hkv + h) * c.d,
    );
    for b in 0..c.b {
        for h in 0..c.h {
            let kh = h / (c.h / c.hkv);
            for i in 0..c.sq {
                let allowed = |j: usize| match c.mask {
                    Mask::None => true,
                    Mask::CausalTopLeft => j <= i,
                    Mask::CausalBottomRight => j + c.sq <= i + c.sk,
                };
                let s: Vec<f64> = (0..c.sk)
                    .map(|j| {
                        if allowed(j) {
                            scale * (0..c.d).map(|t| q[qi(b, i, h) + t] * k[ki(b, j, kh) + t]).sum::<f64>()
                        } else {
                            f64::NEG_INFINITY
                        }
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if m == f64::NEG_INFINITY {
                    continue;
                }
                let l: f64 = s.iter().map(|x| (x - m).exp()).sum();
                let p: Vec<f64> = s.iter().map(|x| (x - m).exp() / l).collect();
                let dp: Vec<f64> =
                    (0..c.sk).map(|j| (0..c.d).map(|t| dout[qi(b, i, h) + t] * v[ki(b, j, kh) + t]).sum()).collect();
                let rowsum: f64 = p.iter().zip(&dp).map(|(a, b)| a * b).sum();
                for j in 0..c.sk {
                    let ds = p[j] * (dp[j] - rowsum);
                    for t in 0..c.d {
                        dv[ki(b, j, kh) + t] += p[j] * dout[qi(b, i, h) + t];
                        dk[ki(b, j, kh) + t] += scale * ds * q[qi(b, i, h) + t];
                        dq[qi(b, i, h) + t] += scale * ds * k[ki(b, j, kh) + t];
                    }
                }
            }
        }
    }
    [dq, dk, dv]
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
    // The backward of the same cases: the parallel two-pass reference against the dense one.
    for (ci, c) in cases.iter().enumerate() {
        let nq = c.b * c.sq * c.h * c.d;
        let nk = c.b * c.sk * c.hkv * c.d;
        let s0 = seed.wrapping_add(1000 + ci as u64 * 4);
        let f = |n: usize, s: u64| -> Vec<f64> {
            randn_bits(n, DType::Bf16, s).reinterpret_cast::<half::bf16>().iter().map(|y| y.to_f64()).collect()
        };
        let (q, k, v, dout) = (f(nq, s0), f(nk, s0 + 1), f(nk, s0 + 2), f(nq, s0 + 3));
        let scale = 1.0 / (c.d as f64).sqrt();
        let got = (|| -> flashcore::Result<reference::RefGrads> {
            let (qs, ks) = ([c.b, c.sq, c.h, c.d], [c.b, c.sk, c.hkv, c.d]);
            let (qt, kt) = (HostTensor::bshd(&q[..], qs)?, HostTensor::bshd(&k[..], ks)?);
            let (vt, dt) = (HostTensor::bshd(&v[..], ks)?, HostTensor::bshd(&dout[..], qs)?);
            reference::attention_backward(&qt, &kt, &vt, &dt, c.mask, scale)
        })();
        let want = dense_backward(&q, &k, &v, &dout, c, scale);
        let label = format!("bwd B{} H{}/{} Sq{} Sk{} D{} {}", c.b, c.h, c.hkv, c.sq, c.sk, c.d, c.mask.name());
        match got {
            Ok(g) => {
                let worst = [(&g.dq, &want[0]), (&g.dk, &want[1]), (&g.dv, &want[2])]
                    .iter()
                    .map(|(a, b)| reference::compare(a, b))
                    .fold(reference::ErrorStats::default(), |w, e| reference::ErrorStats {
                        max_abs: w.max_abs.max(e.max_abs),
                        nan_count: w.nan_count + e.nan_count,
                        ..w
                    });
                let ok = worst.nan_count == 0 && worst.max_abs <= 1e-10;
                failed += usize::from(!ok);
                println!("{label:<44} {:>10.2e} {:>6}", worst.max_abs, if ok { "pass" } else { "FAIL" });
            }
            Err(e) => {
                failed += 1;
                println!("{label:<44} FAIL: {e}");
            }
        }
    }
    println!("{} cases, {} failed (CPU path only: no CUDA device)", 2 * cases.len(), failed);
    i32::from(failed > 0)
}
