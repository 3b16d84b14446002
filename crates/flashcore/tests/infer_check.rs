//! The inference paths on the CPU: window semantics and FLOPs, the softcap reference, and the
//! argument rules of `check_ext` (each bad input names its argument).

use flashcore::api::check::{check, check_ext};
use flashcore::reference::{attention, attention_scored, HostTensor, Precision, Scoring};
use flashcore::{AttnOptions, DType, Error, KvSpec, Mask, Paged, Problem, TensorDesc, Varlen, Visibility, Window};

fn bshd(b: usize, s: usize, h: usize, d: usize) -> TensorDesc {
    TensorDesc::contiguous_bshd(b, s, h, d, DType::Bf16)
}

fn arg_of<T: std::fmt::Debug>(r: flashcore::Result<T>) -> &'static str {
    match r {
        Err(Error::InvalidArg { arg, .. }) => arg,
        other => panic!("expected InvalidArg, got {other:?}"),
    }
}

#[test]
fn window_visibility_matches_its_definition_and_counts_exactly() {
    let windows = [
        Window::default(),
        Window { left: Some(3), right: None },
        Window { left: None, right: Some(2) },
        Window { left: Some(0), right: Some(0) },
        Window { left: Some(5), right: Some(1) },
    ];
    for mask in [Mask::None, Mask::CausalTopLeft, Mask::CausalBottomRight] {
        for w in windows {
            if mask.is_causal() && w.right.is_some_and(|r| r > 0) {
                continue;
            }
            let vis = Visibility { mask, window: w };
            for &(sq, sk) in &[(7, 7), (5, 11), (11, 5)] {
                let d: i64 = if mask == Mask::CausalTopLeft { 0 } else { sk as i64 - sq as i64 };
                for i in 0..sq {
                    let mut n = 0;
                    for j in 0..sk {
                        let (ii, jj) = (i as i64, j as i64);
                        let upper = if mask.is_causal() { Some(0) } else { w.right.map(|r| r as i64) };
                        let want =
                            upper.is_none_or(|r| jj <= ii + d + r) && w.left.is_none_or(|l| jj >= ii + d - l as i64);
                        assert_eq!(vis.visible(i, j, sq, sk), want, "{mask:?} {w:?} ({sq}, {sk}) i {i} j {j}");
                        n += usize::from(want);
                    }
                    assert_eq!(vis.visible_count(i, sq, sk), n);
                }
            }
        }
    }
}

#[test]
fn windowed_flops_count_visible_pairs() {
    let opts = AttnOptions { window: Window { left: Some(10), right: Some(0) }, ..Default::default() };
    let p: Problem =
        check(&bshd(1, 100, 2, 64), &bshd(1, 100, 2, 64), &bshd(1, 100, 2, 64), &bshd(1, 100, 2, 64), &opts).unwrap();
    // Row i sees min(i, 10) + 1 keys.
    let pairs: usize = (0..100).map(|i: usize| i.min(10) + 1).sum();
    assert_eq!(p.flops(), 4.0 * 2.0 * 64.0 * pairs as f64);
}

#[test]
fn softcap_reference_caps_logits_and_vanishes_for_large_caps() {
    let q: Vec<f64> = (0..2 * 4 * 8).map(|x| ((x * 37 % 11) as f64 - 5.0) * 0.7).collect();
    let k: Vec<f64> = (0..2 * 6 * 8).map(|x| ((x * 53 % 13) as f64 - 6.0) * 0.6).collect();
    let qt = HostTensor::bshd(&q, [1, 4, 2, 8]).unwrap();
    let kt = HostTensor::bshd(&k, [1, 6, 2, 8]).unwrap();
    let plain = attention(&qt, &kt, &kt, Mask::None, 0.5, None, Precision::F64).unwrap();
    let huge = Scoring { vis: Mask::None.into(), softcap: Some(1e9) };
    let loose = attention_scored(&qt, &kt, &kt, huge, 0.5, None, Precision::F64).unwrap();
    for (a, b) in plain.out.iter().zip(&loose.out) {
        assert!((a - b).abs() < 1e-9);
    }
    // A tight cap bounds every logit by cap, so the LSE is at most cap + ln(Sk).
    let tight = Scoring { vis: Mask::None.into(), softcap: Some(1.0) };
    let capped = attention_scored(&qt, &kt, &kt, tight, 0.5, None, Precision::F64).unwrap();
    assert!(capped.lse.iter().all(|l| *l <= 1.0 + (6f64).ln() + 1e-12));
    assert!(plain.lse.iter().zip(&capped.lse).any(|(a, b)| (a - b).abs() > 0.1));
}

#[test]
fn inference_arguments_are_named() {
    let q = bshd(2, 1, 8, 128);
    let o = Default::default();
    let dense = bshd(2, 512, 2, 128);
    // Window and softcap.
    let causal_right =
        AttnOptions { mask: Mask::CausalBottomRight, window: Window { left: None, right: Some(1) }, ..o };
    assert_eq!(arg_of(check_ext(&q, &dense, &dense, &q, &KvSpec::default(), &causal_right)), "window");
    let cap = AttnOptions { softcap: Some(f32::NAN), ..o };
    assert_eq!(arg_of(check_ext(&q, &dense, &dense, &q, &KvSpec::default(), &cap)), "softcap");
    // Paged pools.
    let pool = bshd(40, 64, 2, 128);
    let paged = |page_size, stride, seqlen_k, table| KvSpec {
        paged: Some(Paged { block_table: table, stride, page_size, seqlen_k }),
        ..Default::default()
    };
    assert!(check_ext(&q, &pool, &pool, &q, &paged(64, 8, 500, 0x1000), &o).is_ok());
    assert_eq!(arg_of(check_ext(&q, &pool, &pool, &q, &paged(96, 8, 500, 0x1000), &o)), "page_size");
    assert_eq!(arg_of(check_ext(&q, &pool, &pool, &q, &paged(32, 8, 500, 0x1000), &o)), "k");
    assert_eq!(arg_of(check_ext(&q, &pool, &pool, &q, &paged(64, 7, 500, 0x1000), &o)), "block_table");
    assert_eq!(arg_of(check_ext(&q, &pool, &pool, &q, &paged(64, 8, 500, 0), &o)), "block_table");
    assert_eq!(arg_of(check_ext(&q, &pool, &pool, &q, &paged(64, 8, 500, 0x1002), &o)), "block_table");
    assert_eq!(arg_of(check_ext(&q, &pool, &pool, &q, &paged(64, 8, 0, 0x1000), &o)), "max_seqlen_k");
    let strided = TensorDesc::new([40, 64, 2, 128], [2 * 64 * 256 * 2, 256, 128, 1], DType::Bf16);
    assert_eq!(arg_of(check_ext(&q, &strided, &strided, &q, &paged(64, 8, 500, 0x1000), &o)), "k");
    // Varlen.
    let packed_q = bshd(1, 300, 8, 128);
    let packed_k = bshd(1, 900, 2, 128);
    let vl = |cu_q, cu_k, max_q, max_k| KvSpec {
        varlen: Some(Varlen {
            cu_seqlens_q: cu_q,
            cu_seqlens_k: cu_k,
            batch: 3,
            max_seqlen_q: max_q,
            max_seqlen_k: max_k,
        }),
        ..Default::default()
    };
    let br = AttnOptions { mask: Mask::CausalBottomRight, ..o };
    let ep = check_ext(&packed_q, &packed_k, &packed_k, &packed_q, &vl(0x100, 0x200, 200, 600), &br).unwrap();
    assert_eq!(
        (ep.problem.batch, ep.problem.seqlen_q, ep.problem.seqlen_k, ep.total_q, ep.total_k),
        (3, 200, 600, 300, 900)
    );
    assert_eq!(
        arg_of(check_ext(&packed_q, &packed_k, &packed_k, &packed_q, &vl(0x100, 0x200, 301, 600), &br)),
        "max_seqlen_q"
    );
    assert_eq!(
        arg_of(check_ext(&packed_q, &packed_k, &packed_k, &packed_q, &vl(0x100, 0x200, 200, 901), &br)),
        "max_seqlen_k"
    );
    assert_eq!(
        arg_of(check_ext(&packed_q, &packed_k, &packed_k, &packed_q, &vl(0x102, 0x200, 200, 600), &br)),
        "cu_seqlens_q"
    );
    assert_eq!(arg_of(check_ext(&packed_q, &packed_k, &packed_k, &packed_q, &vl(0, 0, 200, 600), &br)), "cu_seqlens_q");
    assert_eq!(arg_of(check_ext(&q, &packed_k, &packed_k, &q, &vl(0x100, 0x200, 1, 600), &br)), "q");
    let top_left = AttnOptions { mask: Mask::CausalTopLeft, ..o };
    assert_eq!(
        arg_of(check_ext(&packed_q, &packed_k, &packed_k, &packed_q, &vl(0x100, 0x200, 200, 600), &top_left)),
        "mask"
    );
    let used = KvSpec { seqused_k: 0x300, ..Default::default() };
    assert_eq!(arg_of(check_ext(&q, &dense, &dense, &q, &used, &top_left)), "mask");
    assert_eq!(
        arg_of(check_ext(&q, &dense, &dense, &q, &KvSpec { seqused_k: 0x301, ..Default::default() }, &o)),
        "seqused_k"
    );
    // Attention sinks: an fp32 array.
    assert_eq!(arg_of(check_ext(&q, &dense, &dense, &q, &KvSpec { sinks: 0x402, ..Default::default() }, &o)), "sinks");
    assert!(check_ext(&q, &dense, &dense, &q, &KvSpec { sinks: 0x400, ..Default::default() }, &o).is_ok());
    // Split counts.
    for n in [0, 129] {
        let s = KvSpec { num_splits: Some(n), ..Default::default() };
        assert_eq!(arg_of(check_ext(&q, &dense, &dense, &q, &s, &o)), "num_splits");
    }
}
