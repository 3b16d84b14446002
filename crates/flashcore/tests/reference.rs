//! The CPU reference against an independent dense implementation, plus its mask, GQA and layout rules.

use flashcore::api::args::Visibility;
use flashcore::reference::{attention, attention_scored, compare, within_bar, HostTensor, Precision, Scoring};
use flashcore::{DType, Mask, Window};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn seed() -> u64 {
    let s = rand::rng().random();
    eprintln!("seed {s}");
    s
}

fn randn(n: usize, rng: &mut StdRng) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-2.0..2.0)).collect()
}

/// Textbook attention over contiguous [B, S, H, D] inputs: materialised scores, masked, softmax.
#[allow(clippy::too_many_arguments)]
fn dense(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    b: usize,
    sq: usize,
    sk: usize,
    h: usize,
    hkv: usize,
    d: usize,
    mask: Mask,
    scale: f64,
) -> (Vec<f64>, Vec<f64>) {
    let mut out = vec![0.0; b * sq * h * d];
    let mut lse = vec![f64::NEG_INFINITY; b * h * sq];
    for bi in 0..b {
        for hi in 0..h {
            let kh = hi * hkv / h;
            for i in 0..sq {
                let s: Vec<Option<f64>> = (0..sk)
                    .map(|j| {
                        let ok = match mask {
                            Mask::None => true,
                            Mask::CausalTopLeft => j <= i,
                            Mask::CausalBottomRight => j as i64 <= i as i64 + sk as i64 - sq as i64,
                        };
                        ok.then(|| {
                            scale
                                * (0..d)
                                    .map(|x| {
                                        q[((bi * sq + i) * h + hi) * d + x] * k[((bi * sk + j) * hkv + kh) * d + x]
                                    })
                                    .sum::<f64>()
                        })
                    })
                    .collect();
                let m = s.iter().flatten().cloned().fold(f64::NEG_INFINITY, f64::max);
                if m == f64::NEG_INFINITY {
                    continue;
                }
                let l: f64 = s.iter().flatten().map(|x| (x - m).exp()).sum();
                lse[(bi * h + hi) * sq + i] = m + l.ln();
                for x in 0..d {
                    out[((bi * sq + i) * h + hi) * d + x] = s
                        .iter()
                        .enumerate()
                        .filter_map(|(j, sj)| sj.map(|sj| (sj - m).exp() / l * v[((bi * sk + j) * hkv + kh) * d + x]))
                        .sum::<f64>();
                }
            }
        }
    }
    (out, lse)
}

#[test]
fn matches_dense_attention_over_masks_gqa_and_odd_lengths() {
    let mut rng = StdRng::seed_from_u64(seed());
    for &(b, sq, sk, h, hkv, d) in
        &[(2, 17, 17, 4, 4, 16), (1, 33, 70, 6, 2, 32), (2, 70, 33, 4, 1, 48), (1, 1, 129, 2, 2, 64)]
    {
        for mask in [Mask::None, Mask::CausalTopLeft, Mask::CausalBottomRight] {
            let q = randn(b * sq * h * d, &mut rng);
            let k = randn(b * sk * hkv * d, &mut rng);
            let v = randn(b * sk * hkv * d, &mut rng);
            let scale = rng.random_range(0.05..0.5);
            let (want, want_lse) = dense(&q, &k, &v, b, sq, sk, h, hkv, d, mask, scale);
            let qt = HostTensor::bshd(&q, [b, sq, h, d]).unwrap();
            let kt = HostTensor::bshd(&k, [b, sk, hkv, d]).unwrap();
            let vt = HostTensor::bshd(&v, [b, sk, hkv, d]).unwrap();
            let got = attention(&qt, &kt, &vt, mask, scale, None, Precision::F64).unwrap();
            let e = compare(&got.out, &want);
            assert!(e.max_abs < 1e-12 && e.nan_count == 0, "{mask:?} b{b} sq{sq} sk{sk}: {e:?}");
            for (g, w) in got.lse.iter().zip(&want_lse) {
                assert!(g == w || (g - w).abs() < 1e-12, "lse {g} vs {w}");
            }
        }
    }
}

#[test]
fn fully_masked_rows_give_zero_and_neg_inf_lse() {
    // Bottom-right with Sq > Sk: the first Sq - Sk rows see no key.
    let (b, sq, sk, h, d) = (1, 10, 4, 2, 16);
    let mut rng = StdRng::seed_from_u64(seed());
    let q = randn(b * sq * h * d, &mut rng);
    let k = randn(b * sk * h * d, &mut rng);
    let qt = HostTensor::bshd(&q, [b, sq, h, d]).unwrap();
    let kt = HostTensor::bshd(&k, [b, sk, h, d]).unwrap();
    let r = attention(&qt, &kt, &kt, Mask::CausalBottomRight, 0.25, None, Precision::F64).unwrap();
    for i in 0..sq {
        for hi in 0..h {
            let row = &r.out[(i * h + hi) * d..(i * h + hi + 1) * d];
            let lse = r.lse[hi * sq + i];
            if i < sq - sk {
                assert!(row.iter().all(|x| *x == 0.0));
                assert_eq!(lse, f64::NEG_INFINITY);
            } else {
                assert!(lse.is_finite());
                assert!(row.iter().any(|x| *x != 0.0));
            }
        }
    }
}

#[test]
fn strided_bhsd_view_and_sampled_rows_agree_with_contiguous() {
    let (b, s, h, d) = (2, 37, 3, 32);
    let mut rng = StdRng::seed_from_u64(seed());
    // Contiguous BSHD data, and the same values stored BHSD with padding between heads.
    let q = randn(b * s * h * d, &mut rng);
    let pad = 5 * d;
    let head_stride = s * d + pad;
    let mut qbhsd = vec![f64::NAN; b * h * head_stride];
    for bi in 0..b {
        for si in 0..s {
            for hi in 0..h {
                for x in 0..d {
                    qbhsd[(bi * h + hi) * head_stride + si * d + x] = q[((bi * s + si) * h + hi) * d + x];
                }
            }
        }
    }
    let qt = HostTensor::bshd(&q, [b, s, h, d]).unwrap();
    let qv = HostTensor::new(&qbhsd, [b, s, h, d], [h * head_stride, d, head_stride, 1]).unwrap();
    let a = attention(&qt, &qt, &qt, Mask::CausalTopLeft, 0.2, None, Precision::F64).unwrap();
    let c = attention(&qv, &qv, &qv, Mask::CausalTopLeft, 0.2, None, Precision::F64).unwrap();
    assert_eq!(a.out, c.out);
    let rows = [0usize, 5, 36];
    let sub = attention(&qv, &qv, &qv, Mask::CausalTopLeft, 0.2, Some(&rows), Precision::F64).unwrap();
    for bi in 0..b {
        for (ri, &r) in rows.iter().enumerate() {
            for hi in 0..h {
                let x = &sub.out[((bi * rows.len() + ri) * h + hi) * d..][..d];
                let y = &a.out[((bi * s + r) * h + hi) * d..][..d];
                assert_eq!(x, y);
            }
        }
    }
    assert!(attention(&qv, &qv, &qv, Mask::None, 0.2, Some(&[s]), Precision::F64).is_err(), "row out of range");
}

#[test]
fn naive_same_dtype_error_is_small_but_nonzero() {
    let (b, s, h, d) = (1, 64, 2, 64);
    let mut rng = StdRng::seed_from_u64(seed());
    for dt in [DType::F16, DType::Bf16] {
        let raw = randn(b * s * h * d, &mut rng);
        let q: Vec<f32> = raw
            .iter()
            .map(|x| match dt {
                DType::F16 => half::f16::from_f64(*x).to_f32(),
                DType::Bf16 => half::bf16::from_f64(*x).to_f32(),
                DType::E4m3 => flashcore::fp8::e4m3_to_f32(flashcore::fp8::f32_to_e4m3(*x as f32)),
            })
            .collect();
        let t = HostTensor::bshd(&q, [b, s, h, d]).unwrap();
        let exact = attention(&t, &t, &t, Mask::None, 0.125, None, Precision::F64).unwrap();
        let naive = attention(&t, &t, &t, Mask::None, 0.125, None, Precision::Naive(dt)).unwrap();
        let e = compare(&naive.out, &exact.out);
        let unit = if dt == DType::F16 { 2f64.powi(-11) } else { 2f64.powi(-8) };
        assert!(e.max_abs > 0.0 && e.max_abs < 16.0 * unit, "{dt:?}: {e:?}");
        assert!(within_bar(&e, &e));
        let mut worse = e;
        worse.max_abs = 3.0 * e.max_abs + 1e-4;
        assert!(!within_bar(&worse, &e));
    }
}

#[test]
fn compare_counts_unwritten_nans() {
    let e = compare(&[1.0, f64::NAN, 3.0], &[1.0, 2.0, 3.5]);
    assert_eq!(e.nan_count, 1);
    assert_eq!(e.max_abs, 0.5);
    assert!(!within_bar(&e, &compare(&[1.0], &[1.0])));
}

/// loss = sum(out * dout) through the forward reference, for finite differences.
#[allow(clippy::too_many_arguments)]
fn loss(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    dout: &[f64],
    qs: [usize; 4],
    ks: [usize; 4],
    scoring: Scoring,
    scale: f64,
) -> f64 {
    let qt = HostTensor::bshd(q, qs).unwrap();
    let kt = HostTensor::bshd(k, ks).unwrap();
    let vt = HostTensor::bshd(v, ks).unwrap();
    let o = attention_scored(&qt, &kt, &vt, scoring, scale, None, Precision::F64).unwrap().out;
    o.iter().zip(dout).map(|(a, b)| a * b).sum()
}

#[test]
fn backward_matches_finite_differences_over_masks_windows_softcaps_and_gqa() {
    let mut rng = StdRng::seed_from_u64(seed());
    let win = |mask, left, right| Visibility { mask, window: Window { left, right } };
    let visibilities = [
        Mask::None.into(),
        Mask::CausalTopLeft.into(),
        Mask::CausalBottomRight.into(),
        win(Mask::None, Some(2), None),
        win(Mask::None, Some(1), Some(2)),
        win(Mask::CausalBottomRight, Some(3), None),
        win(Mask::CausalTopLeft, Some(1), Some(0)),
    ];
    // A cap of 1.5 against scores of a few units: tanh is far from linear there.
    let scorings = visibilities.iter().flat_map(|&vis| [None, Some(1.5)].map(|softcap| Scoring { vis, softcap }));
    for &(b, sq, sk, h, hkv, d) in &[(1, 6, 6, 2, 2, 4), (2, 5, 9, 4, 2, 4), (1, 9, 4, 2, 1, 8)] {
        for mask in scorings.clone() {
            let (qs, ks) = ([b, sq, h, d], [b, sk, hkv, d]);
            let q = randn(b * sq * h * d, &mut rng);
            let k = randn(b * sk * hkv * d, &mut rng);
            let v = randn(b * sk * hkv * d, &mut rng);
            let dout = randn(b * sq * h * d, &mut rng);
            let scale = 0.4;
            let g = flashcore::reference::attention_backward(
                &HostTensor::bshd(&q, qs).unwrap(),
                &HostTensor::bshd(&k, ks).unwrap(),
                &HostTensor::bshd(&v, ks).unwrap(),
                &HostTensor::bshd(&dout, qs).unwrap(),
                mask,
                scale,
            )
            .unwrap();
            let eps = 1e-6;
            let check = |which: usize, grad: &[f64]| {
                let n = grad.len();
                for idx in 0..n {
                    let mut bufs = [q.clone(), k.clone(), v.clone()];
                    bufs[which][idx] += eps;
                    let up = loss(&bufs[0], &bufs[1], &bufs[2], &dout, qs, ks, mask, scale);
                    bufs[which][idx] -= 2.0 * eps;
                    let down = loss(&bufs[0], &bufs[1], &bufs[2], &dout, qs, ks, mask, scale);
                    let fd = (up - down) / (2.0 * eps);
                    assert!(
                        (fd - grad[idx]).abs() <= 1e-6 * (1.0 + fd.abs()),
                        "{mask:?} b{b} sq{sq} sk{sk} h{h}/{hkv}: d{} [{idx}] analytic {} vs finite difference {fd}",
                        ["q", "k", "v"][which],
                        grad[idx]
                    );
                }
            };
            check(0, &g.dq);
            check(1, &g.dk);
            check(2, &g.dv);
        }
    }
}

fn rounded(x: &[f64], dt: DType) -> Vec<f64> {
    x.iter()
        .map(|v| match dt {
            DType::F16 => half::f16::from_f64(*v).to_f64(),
            DType::Bf16 => half::bf16::from_f64(*v).to_f64(),
            DType::E4m3 => flashcore::fp8::e4m3_to_f32(flashcore::fp8::f32_to_e4m3(*v as f32)) as f64,
        })
        .collect()
}

#[test]
fn naive_backward_error_is_small_but_nonzero_and_groups_select_exactly() {
    use flashcore::reference::attention_backward_at;
    let mut rng = StdRng::seed_from_u64(seed());
    let (b, sq, sk, h, hkv, d) = (2, 33, 47, 4, 2, 32);
    let (qs, ks) = ([b, sq, h, d], [b, sk, hkv, d]);
    for dt in [DType::F16, DType::Bf16] {
        let q = rounded(&randn(b * sq * h * d, &mut rng), dt);
        let k = rounded(&randn(b * sk * hkv * d, &mut rng), dt);
        let v = rounded(&randn(b * sk * hkv * d, &mut rng), dt);
        let dout = rounded(&randn(b * sq * h * d, &mut rng), dt);
        let (qt, kt) = (HostTensor::bshd(&q, qs).unwrap(), HostTensor::bshd(&k, ks).unwrap());
        let (vt, dt_) = (HostTensor::bshd(&v, ks).unwrap(), HostTensor::bshd(&dout, qs).unwrap());
        for mask in [Mask::None, Mask::CausalBottomRight] {
            let exact = attention_backward_at(&qt, &kt, &vt, &dt_, mask, 0.2, Precision::F64, None).unwrap();
            let plain = flashcore::reference::attention_backward(&qt, &kt, &vt, &dt_, mask, 0.2).unwrap();
            assert_eq!(exact.dq, plain.dq);
            let naive = attention_backward_at(&qt, &kt, &vt, &dt_, mask, 0.2, Precision::Naive(dt), None).unwrap();
            let unit = if dt == DType::F16 { 2f64.powi(-11) } else { 2f64.powi(-8) };
            for (name, got, want) in
                [("dq", &naive.dq, &exact.dq), ("dk", &naive.dk, &exact.dk), ("dv", &naive.dv, &exact.dv)]
            {
                let e = compare(got, want);
                let scale = want.iter().fold(0f64, |m, x| m.max(x.abs()));
                assert!(e.max_abs > 0.0 && e.max_abs < 64.0 * unit * scale.max(1.0), "{dt:?} {mask:?} {name}: {e:?}");
            }
            // One (batch, kv head) group alone: its entries are exactly the full run's, the rest 0.
            let one = attention_backward_at(&qt, &kt, &vt, &dt_, mask, 0.2, Precision::F64, Some(&[(1, 0)])).unwrap();
            for bi in 0..b {
                for hi in 0..h {
                    for i in 0..sq {
                        let at = ((bi * sq + i) * h + hi) * d;
                        let want = if bi == 1 && hi / (h / hkv) == 0 { &exact.dq[at..at + d] } else { &[0.0; 32][..] };
                        assert_eq!(&one.dq[at..at + d], want);
                    }
                }
                for kh in 0..hkv {
                    for j in 0..sk {
                        let at = ((bi * sk + j) * hkv + kh) * d;
                        let sel = bi == 1 && kh == 0;
                        assert_eq!(&one.dk[at..at + d], if sel { &exact.dk[at..at + d] } else { &[0.0; 32][..] });
                        assert_eq!(&one.dv[at..at + d], if sel { &exact.dv[at..at + d] } else { &[0.0; 32][..] });
                    }
                }
            }
            let bad = attention_backward_at(&qt, &kt, &vt, &dt_, mask, 0.2, Precision::F64, Some(&[(0, hkv)]));
            assert!(bad.is_err(), "group out of range");
        }
    }
}

#[test]
fn dtype_encode_and_decode_round_values_as_the_dtype() {
    // Exactly representable in all three dtypes: round trips unchanged.
    for dt in [DType::F16, DType::Bf16, DType::E4m3] {
        for x in [0.0f32, 1.0, -2.5, 0.125, 448.0] {
            assert_eq!(dt.decode(dt.encode(x)), x as f64, "{dt:?} {x}");
        }
    }
    // Otherwise the dtype's rounding, the same as the rounding helpers above.
    let x = 0.1f32;
    for dt in [DType::F16, DType::Bf16, DType::E4m3] {
        assert_eq!(dt.decode(dt.encode(x)), rounded(&[x as f64], dt)[0], "{dt:?}");
    }
    assert_eq!(DType::Bf16.encode(1.0), 0x3f80);
    assert_eq!(DType::F16.encode(1.0), 0x3c00);
    assert!(DType::F16.decode(DType::F16.encode(f32::NAN)).is_nan());
}
