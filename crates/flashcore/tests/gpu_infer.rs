//! GPU tests of the inference paths (feature `gpu`): sliding window, softcap, varlen batches,
//! KV-cache lengths, paged K/V, split-KV and merge. Each case draws fresh random inputs per
//! sequence, computes every sequence's f64 and naive same-dtype reference on its own dense tensors,
//! lays the data out as the call under test expects (packed, padded cache, shuffled page pool),
//! poisons the outputs with NaN and checks O and LSE with the FlashAttention bar (max error <=
//! 2 x naive error + 1e-5).
#![cfg(feature = "gpu")]

mod common;

use common::{rand_bits, rt, seeded, values};
use flashcore::cudarc::driver::CudaSlice;
use flashcore::reference::{attention_scored, compare, within_bar, HostTensor, Precision, Scoring};
use flashcore::{
    AttnOptions, DType, DeviceTensor, Error, KvArrays, KvSpec, Mask, Paged, TensorDesc, Varlen, Visibility, Window,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

fn host(v: Vec<f64>, shape: [usize; 4]) -> HostTensor<'static, f64> {
    let leaked: &'static [f64] = Box::leak(v.into_boxed_slice());
    HostTensor::bshd(leaked, shape).unwrap()
}

/// How the keys are laid out on the device.
#[derive(Clone, Copy, Debug)]
enum Kv {
    /// [B, Sk, Hkv, D]: every sequence has the same key count.
    Dense,
    /// A padded cache [B, smax, Hkv, D] with per-sequence lengths in seqused_k.
    Cache { smax: usize },
    /// Packed [1, total_k, Hkv, D] with cu_seqlens_k.
    Varlen,
    /// A shuffled page pool with a block table and seqused_k.
    Paged { page: usize },
}

#[derive(Clone, Debug)]
struct Case {
    dt: DType,
    h: usize,
    hkv: usize,
    d: usize,
    /// (Sq, Sk) per sequence.
    seqs: Vec<(usize, usize)>,
    mask: Mask,
    window: Window,
    softcap: Option<f32>,
    kv: Kv,
    /// Packed queries with cu_seqlens_q (else [B, Sq, H, D], every Sq equal).
    q_varlen: bool,
    splits: Option<usize>,
    /// Attention sinks, one logit per query head.
    sinks: Option<Vec<f32>>,
}

/// What a sink does to an exact (out [1, sq, h, d], lse [h, sq]) pair: each row's weights are
/// divided by 1 + e^{sink - lse} and its LSE becomes logaddexp(lse, sink) (a row that saw no key
/// gets O = 0 and LSE = sink). Exact in f64, so it turns the sink-free references into references
/// with sinks.
fn apply_sinks(out: &mut [f64], lse: &mut [f64], sinks: &[f32], sq: usize, h: usize, d: usize) {
    for hi in 0..h {
        let sg = sinks[hi] as f64;
        for i in 0..sq {
            let l = lse[hi * sq + i];
            let m = l.max(sg);
            let total = m + ((l - m).exp() + (sg - m).exp()).ln();
            let f = (l - total).exp();
            lse[hi * sq + i] = total;
            out[(i * h + hi) * d..][..d].iter_mut().for_each(|x| *x *= f);
        }
    }
}

impl Case {
    fn new(dt: DType, h: usize, hkv: usize, d: usize, seqs: &[(usize, usize)]) -> Case {
        Case {
            dt,
            h,
            hkv,
            d,
            seqs: seqs.to_vec(),
            mask: Mask::None,
            window: Window::default(),
            softcap: None,
            kv: Kv::Dense,
            q_varlen: false,
            splits: None,
            sinks: None,
        }
    }
}

fn upload_i32(v: &[i32]) -> CudaSlice<i32> {
    rt().stream().clone_htod(v).unwrap()
}

fn run_case(c: &Case, rng: &mut StdRng) {
    let rt = rt();
    let (dt, h, hkv, d) = (c.dt, c.h, c.hkv, c.d);
    let b = c.seqs.len();
    let qs: Vec<Vec<u16>> = c.seqs.iter().map(|&(sq, _)| rand_bits(sq * h * d, dt, rng)).collect();
    let ks: Vec<Vec<u16>> = c.seqs.iter().map(|&(_, sk)| rand_bits(sk * hkv * d, dt, rng)).collect();
    let vs: Vec<Vec<u16>> = c.seqs.iter().map(|&(_, sk)| rand_bits(sk * hkv * d, dt, rng)).collect();

    // Reference, one dense problem per sequence.
    let scale = 1.0 / (d as f64).sqrt();
    let scoring = Scoring { vis: Visibility { mask: c.mask, window: c.window }, softcap: c.softcap };
    let (mut want_o, mut naive_o, mut want_lse) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &(sq, sk)) in c.seqs.iter().enumerate() {
        let qh = host(values(&qs[i], dt), [1, sq, h, d]);
        let kh = host(values(&ks[i], dt), [1, sk, hkv, d]);
        let vh = host(values(&vs[i], dt), [1, sk, hkv, d]);
        let mut w = attention_scored(&qh, &kh, &vh, scoring, scale, None, Precision::F64).unwrap();
        let mut n = attention_scored(&qh, &kh, &vh, scoring, scale, None, Precision::Naive(dt)).unwrap();
        if let Some(sk) = &c.sinks {
            apply_sinks(&mut w.out, &mut w.lse, sk, sq, h, d);
            apply_sinks(&mut n.out, &mut n.lse, sk, sq, h, d);
        }
        want_o.extend(w.out);
        naive_o.extend(n.out);
        want_lse.push(w.lse); // [H, sq]
    }

    // Queries: the concatenation of the sequences is both the packed and the [B, Sq] layout.
    let total_q: usize = c.seqs.iter().map(|s| s.0).sum();
    let max_q = c.seqs.iter().map(|s| s.0).max().unwrap();
    let max_k = c.seqs.iter().map(|s| s.1).max().unwrap();
    let qcat: Vec<u16> = qs.concat();
    let qd = if c.q_varlen {
        TensorDesc::contiguous_bshd(1, total_q, h, d, dt)
    } else {
        assert!(c.seqs.iter().all(|s| s.0 == max_q), "dense q needs equal Sq");
        TensorDesc::contiguous_bshd(b, max_q, h, d, dt)
    };
    let mut cu_q = vec![0i32];
    let mut cu_k = vec![0i32];
    for &(sq, sk) in &c.seqs {
        cu_q.push(cu_q.last().unwrap() + sq as i32);
        cu_k.push(cu_k.last().unwrap() + sk as i32);
    }
    let used: Vec<i32> = c.seqs.iter().map(|s| s.1 as i32).collect();
    let row = hkv * d;
    let (kcat, vcat, kd, table, stride) = match c.kv {
        Kv::Dense => {
            assert!(c.seqs.iter().all(|s| s.1 == max_k), "dense k needs equal Sk");
            (ks.concat(), vs.concat(), TensorDesc::contiguous_bshd(b, max_k, hkv, d, dt), None, 0)
        }
        Kv::Varlen => (ks.concat(), vs.concat(), TensorDesc::contiguous_bshd(1, cu_k[b] as usize, hkv, d, dt), None, 0),
        Kv::Cache { smax } => {
            // Rows past each sequence's length hold finite junk: masked keys must not leak in.
            let mut kc = rand_bits(b * smax * row, dt, rng);
            let mut vc = rand_bits(b * smax * row, dt, rng);
            for i in 0..b {
                kc[i * smax * row..][..ks[i].len()].copy_from_slice(&ks[i]);
                vc[i * smax * row..][..vs[i].len()].copy_from_slice(&vs[i]);
            }
            (kc, vc, TensorDesc::contiguous_bshd(b, smax, hkv, d, dt), None, 0)
        }
        Kv::Paged { page } => {
            let stride = max_k.div_ceil(page);
            let needed: usize = c.seqs.iter().map(|s| s.1.div_ceil(page)).sum();
            let pages = needed + 3;
            let mut order: Vec<usize> = (0..pages).collect();
            order.shuffle(rng);
            let mut kp = rand_bits(pages * page * row, dt, rng);
            let mut vp = rand_bits(pages * page * row, dt, rng);
            // Entries past a sequence's pages are garbage the kernel must clamp, never follow.
            let mut table = vec![1_000_000i32; b * stride];
            let mut next = 0;
            for (i, &(_, sk)) in c.seqs.iter().enumerate() {
                for pi in 0..sk.div_ceil(page) {
                    let pg = order[next];
                    next += 1;
                    table[i * stride + pi] = pg as i32;
                    for r in 0..page.min(sk - pi * page) {
                        let j = pi * page + r;
                        kp[(pg * page + r) * row..][..row].copy_from_slice(&ks[i][j * row..][..row]);
                        vp[(pg * page + r) * row..][..row].copy_from_slice(&vs[i][j * row..][..row]);
                    }
                }
            }
            (kp, vp, TensorDesc::contiguous_bshd(pages, page, hkv, d, dt), Some(table), stride)
        }
    };
    let q = rt.upload(&qcat, qd).unwrap();
    let k = rt.upload(&kcat, kd).unwrap();
    let v = rt.upload(&vcat, kd).unwrap();
    let mut out = rt.alloc_filled(qd, dt.encode(f32::NAN)).unwrap();
    let lse_len = if c.q_varlen { h * total_q } else { b * h * max_q };
    let mut lse = rt.stream().clone_htod(&vec![f32::NAN; lse_len]).unwrap();

    let k_varlen = matches!(c.kv, Kv::Varlen);
    let cu_q_dev = upload_i32(&cu_q);
    let cu_k_dev = upload_i32(&cu_k);
    let used_dev = upload_i32(&used);
    let table_dev = table.as_ref().map(|t| upload_i32(t));
    let varlen = (c.q_varlen || k_varlen).then_some(Varlen {
        cu_seqlens_q: 0,
        cu_seqlens_k: 0,
        batch: b,
        max_seqlen_q: max_q,
        max_seqlen_k: max_k,
    });
    let seqused = matches!(c.kv, Kv::Cache { .. } | Kv::Paged { .. });
    let spec = KvSpec {
        varlen,
        seqused_k: 0,
        paged: match c.kv {
            Kv::Paged { page } => Some(Paged { block_table: 0, stride, page_size: page, seqlen_k: max_k }),
            _ => None,
        },
        num_splits: c.splits,
        sinks: 0,
    };
    let sinks_dev = c.sinks.as_ref().map(|x| rt.stream().clone_htod(x).unwrap());
    let arrays = KvArrays {
        cu_seqlens_q: c.q_varlen.then_some(&cu_q_dev),
        cu_seqlens_k: k_varlen.then_some(&cu_k_dev),
        seqused_k: seqused.then_some(&used_dev),
        block_table: table_dev.as_ref(),
        sinks: sinks_dev.as_ref(),
    };
    let opts = AttnOptions { mask: c.mask, window: c.window, softcap: c.softcap, ..Default::default() };
    rt.forward_ext(&q, &k, &v, &mut out, Some(&mut lse), &arrays, &spec, &opts).unwrap();
    let got_o = values(&rt.download(&out).unwrap(), dt);
    let got_lse: Vec<f32> = rt.stream().clone_dtoh(&lse).unwrap();

    // Output rows are in concatenation order in every layout used here.
    let got_o = &got_o[..want_o.len()];
    let e = compare(got_o, &want_o);
    let en = compare(&naive_o, &want_o);
    assert!(within_bar(&e, &en), "{c:?}: kernel {e:?} vs naive {en:?}");
    for (bi, &(sq, _)) in c.seqs.iter().enumerate() {
        for hi in 0..h {
            for i in 0..sq {
                let g = if c.q_varlen {
                    got_lse[hi * total_q + cu_q[bi] as usize + i]
                } else {
                    got_lse[(bi * h + hi) * max_q + i]
                } as f64;
                let w = want_lse[bi][hi * sq + i];
                assert!(g == w || (g - w).abs() < 1e-3, "{c:?}: lse (b {bi}, h {hi}, i {i}) {g} vs {w}");
            }
        }
    }
}

#[test]
fn sliding_window_left_right_both_and_with_causal() {
    let mut rng = seeded();
    let windows = [
        (Mask::None, Window { left: Some(50), right: None }),
        (Mask::None, Window { left: None, right: Some(20) }),
        (Mask::None, Window { left: Some(64), right: Some(16) }),
        (Mask::None, Window { left: Some(0), right: Some(0) }),
        (Mask::CausalBottomRight, Window { left: Some(100), right: None }),
        (Mask::CausalTopLeft, Window { left: Some(33), right: Some(0) }),
        (Mask::CausalBottomRight, Window { left: Some(5000), right: None }),
    ];
    for dt in [DType::Bf16, DType::F16] {
        for &(d, sq, sk) in &[(128, 300, 300), (64, 77, 450), (256, 200, 130), (96, 129, 257)] {
            for &(mask, window) in &windows {
                let mut c = Case::new(dt, 4, 2, d, &[(sq, sk), (sq, sk)]);
                c.mask = mask;
                c.window = window;
                run_case(&c, &mut rng);
            }
        }
    }
}

#[test]
fn logit_softcap_with_and_without_masks() {
    let mut rng = seeded();
    for dt in [DType::Bf16, DType::F16] {
        for &(d, sq, sk) in &[(128, 200, 333), (64, 130, 130), (256, 65, 200)] {
            for &(mask, cap) in &[(Mask::None, 5.0f32), (Mask::CausalBottomRight, 30.0), (Mask::CausalTopLeft, 1.0)] {
                let mut c = Case::new(dt, 4, 4, d, &[(sq, sk)]);
                c.mask = mask;
                c.softcap = Some(cap);
                run_case(&c, &mut rng);
            }
            // Softcap with a window.
            let mut c = Case::new(dt, 4, 2, d, &[(sq, sk), (sq, sk)]);
            c.mask = Mask::CausalBottomRight;
            c.window = Window { left: Some(40), right: Some(0) };
            c.softcap = Some(20.0);
            run_case(&c, &mut rng);
        }
    }
}

#[test]
fn varlen_prefill_mixed_lengths_causal_and_not() {
    let mut rng = seeded();
    let lens = [(1, 1), (7, 7), (300, 300), (129, 129), (64, 64), (1, 1), (513, 513)];
    for dt in [DType::Bf16, DType::F16] {
        for d in [64, 128] {
            for mask in [Mask::None, Mask::CausalBottomRight] {
                let mut c = Case::new(dt, 4, 2, d, &lens);
                c.mask = mask;
                c.q_varlen = true;
                c.kv = Kv::Varlen;
                run_case(&c, &mut rng);
            }
        }
    }
    // Chunked prefill: fewer queries than keys per sequence (bottom-right diagonal per sequence).
    let mut c = Case::new(DType::Bf16, 8, 2, 128, &[(5, 300), (64, 64), (33, 1000), (1, 17)]);
    c.mask = Mask::CausalBottomRight;
    c.q_varlen = true;
    c.kv = Kv::Varlen;
    run_case(&c, &mut rng);
}

#[test]
fn varlen_with_sliding_window() {
    let mut rng = seeded();
    for &(mask, window) in &[
        (Mask::CausalBottomRight, Window { left: Some(32), right: Some(0) }),
        (Mask::None, Window { left: Some(100), right: Some(7) }),
    ] {
        let mut c = Case::new(DType::Bf16, 4, 1, 128, &[(300, 300), (17, 17), (3, 200), (257, 257)]);
        c.mask = mask;
        c.window = window;
        c.q_varlen = true;
        c.kv = Kv::Varlen;
        run_case(&c, &mut rng);
        c.splits = Some(3);
        run_case(&c, &mut rng);
    }
}

#[test]
fn kv_cache_decode_with_seqused_k() {
    let mut rng = seeded();
    for dt in [DType::Bf16, DType::F16] {
        for sq in [1, 4] {
            for mask in [Mask::None, Mask::CausalBottomRight] {
                for splits in [None, Some(1), Some(4)] {
                    let seqs: Vec<(usize, usize)> = [1000, 17, 513, 4].iter().map(|&sk| (sq, sk)).collect();
                    let mut c = Case::new(dt, 8, 2, 128, &seqs);
                    c.mask = mask;
                    c.kv = Kv::Cache { smax: 1024 };
                    c.splits = splits;
                    run_case(&c, &mut rng);
                }
            }
        }
    }
}

#[test]
fn paged_kv_with_gqa_and_split() {
    let mut rng = seeded();
    for page in [16, 64, 256] {
        for splits in [None, Some(1), Some(3)] {
            for &(d, h, hkv) in &[(128, 8, 2), (64, 4, 1), (256, 4, 4)] {
                let seqs = [(1, 700), (1, 33), (1, 256), (1, 1)];
                let mut c = Case::new(DType::Bf16, h, hkv, d, &seqs);
                c.mask = Mask::CausalBottomRight;
                c.kv = Kv::Paged { page };
                c.splits = splits;
                run_case(&c, &mut rng);
            }
        }
        // Several queries per sequence (speculative decoding) on fp16, with a window.
        let mut c = Case::new(DType::F16, 8, 2, 128, &[(4, 900), (4, 40)]);
        c.mask = Mask::CausalBottomRight;
        c.window = Window { left: Some(300), right: Some(0) };
        c.kv = Kv::Paged { page };
        c.splits = Some(2);
        run_case(&c, &mut rng);
    }
}

#[test]
fn split_kv_forced_counts_match_the_reference() {
    let mut rng = seeded();
    for splits in [1, 2, 3, 7, 16, 64] {
        for &(sq, h, hkv) in &[(1, 8, 8), (1, 32, 8), (16, 8, 2), (200, 2, 2)] {
            let mut c = Case::new(DType::Bf16, h, hkv, 128, &[(sq, 2000), (sq, 2000)]);
            c.mask = if sq > 1 { Mask::CausalBottomRight } else { Mask::None };
            c.splits = Some(splits);
            run_case(&c, &mut rng);
        }
    }
    // The planner's own choice on a single long sequence.
    let c = Case::new(DType::F16, 8, 1, 128, &[(1, 20000)]);
    run_case(&c, &mut rng);
}

/// Attention sinks (one logit per query head joining every row's softmax denominator): decode on a
/// dense cache with GQA packing, with and without forced splits (the combine adds the sink once);
/// paged with a split; varlen prefill with a causal window; a dense prefill that the sinks alone
/// send down the inference epilogue; sinks large enough to take most of the weight, and -inf (no
/// sink). Checked like every case here: O against f64 with the naive bar, the LSE to 1e-3.
#[test]
fn attention_sinks_on_decode_paged_split_varlen_and_dense_prefill() {
    let mut rng = seeded();
    // From well below the rows' LSEs (~5-15 here) to above them; head 1 has none (-inf).
    let sinks = |h: usize, rng: &mut StdRng| -> Vec<f32> {
        (0..h).map(|i| if i == 1 { f32::NEG_INFINITY } else { rng.random_range(-2.0f32..16.0) }).collect()
    };
    for dt in [DType::Bf16, DType::F16] {
        let mut c = Case::new(dt, 8, 2, 128, &[(1, 1000); 3]);
        c.kv = Kv::Cache { smax: 1100 };
        c.seqs = vec![(1, 1000), (1, 517), (1, 1)];
        c.sinks = Some(sinks(8, &mut rng));
        run_case(&c, &mut rng);
        c.splits = Some(4);
        run_case(&c, &mut rng);

        let mut c = Case::new(dt, 4, 4, 64, &[(2, 700), (2, 300)]);
        c.kv = Kv::Paged { page: 64 };
        c.mask = Mask::CausalBottomRight;
        c.splits = Some(3);
        c.sinks = Some(sinks(4, &mut rng));
        run_case(&c, &mut rng);

        let mut c = Case::new(dt, 6, 2, 128, &[(300, 300), (77, 513), (129, 129)]);
        c.kv = Kv::Varlen;
        c.q_varlen = true;
        c.mask = Mask::CausalBottomRight;
        c.window = Window { left: Some(100), right: None };
        c.sinks = Some(sinks(6, &mut rng));
        run_case(&c, &mut rng);

        let mut c = Case::new(dt, 4, 2, 96, &[(77, 300); 2]);
        c.sinks = Some(sinks(4, &mut rng));
        run_case(&c, &mut rng);
    }
}

#[test]
fn merge_of_two_key_halves_equals_attention_over_all_keys() {
    let rt = rt();
    let mut rng = seeded();
    for dt in [DType::Bf16, DType::F16] {
        for &(b, sq, h, d, sk, cut) in &[(2, 37, 4, 128, 500, 200), (1, 1, 8, 64, 300, 1), (1, 64, 2, 96, 129, 128)] {
            let qd = TensorDesc::contiguous_bshd(b, sq, h, d, dt);
            let kd = TensorDesc::contiguous_bshd(b, sk, h, d, dt);
            let (qb, kb, vb) = (
                rand_bits(b * sq * h * d, dt, &mut rng),
                rand_bits(b * sk * h * d, dt, &mut rng),
                rand_bits(b * sk * h * d, dt, &mut rng),
            );
            // The two halves as strided views of the same K and V.
            let k = rt.upload(&kb, kd).unwrap();
            let v = rt.upload(&vb, kd).unwrap();
            let q = rt.upload(&qb, qd).unwrap();
            let half = |t: &DeviceTensor, start: usize, len: usize| -> DeviceTensor {
                let host = rt.download(t).unwrap();
                let off = start * kd.strides[1] as usize;
                let desc = TensorDesc::new([b, len, h, d], kd.strides, dt);
                rt.upload(&host[off..], desc).unwrap()
            };
            let (ka, va) = (half(&k, 0, cut), half(&v, 0, cut));
            let (kb2, vb2) = (half(&k, cut, sk - cut), half(&v, cut, sk - cut));
            let opts = AttnOptions { return_lse: true, ..Default::default() };
            let (oa, la) = rt.forward(&q, &ka, &va, &opts).unwrap();
            let (ob, lb) = rt.forward(&q, &kb2, &vb2, &opts).unwrap();
            let (om, lm) = rt.merge(&oa, la.as_ref().unwrap(), &ob, lb.as_ref().unwrap()).unwrap();
            let got = values(&rt.download(&om).unwrap(), dt);
            let got_lse: Vec<f32> = rt.stream().clone_dtoh(&lm).unwrap();

            let scale = 1.0 / (d as f64).sqrt();
            let (qh, kh, vh) =
                (host(values(&qb, dt), qd.shape), host(values(&kb, dt), kd.shape), host(values(&vb, dt), kd.shape));
            let sc = Scoring { vis: Mask::None.into(), softcap: None };
            let want = attention_scored(&qh, &kh, &vh, sc, scale, None, Precision::F64).unwrap();
            let naive = attention_scored(&qh, &kh, &vh, sc, scale, None, Precision::Naive(dt)).unwrap();
            let e = compare(&got[..want.out.len()], &want.out);
            let en = compare(&naive.out, &want.out);
            assert!(within_bar(&e, &en), "merge {b} {sq} {h} {d} {sk}/{cut}: {e:?} vs naive {en:?}");
            for (g, w) in got_lse.iter().zip(&want.lse) {
                assert!((*g as f64 - w).abs() < 1e-3, "merged lse {g} vs {w}");
            }
        }
    }
}

#[test]
fn inference_arguments_are_rejected_by_name() {
    let rt = rt();
    let dt = DType::Bf16;
    let q = rt.alloc_filled(TensorDesc::contiguous_bshd(2, 1, 4, 128, dt), 0).unwrap();
    let k = rt.alloc_filled(TensorDesc::contiguous_bshd(8, 64, 1, 128, dt), 0).unwrap();
    let mut out = rt.alloc_filled(q.desc, 0).unwrap();
    let table = upload_i32(&[0; 8]);
    let arrays = KvArrays { block_table: Some(&table), ..Default::default() };
    let paged = |page_size, seqlen_k| KvSpec {
        paged: Some(Paged { block_table: 0, stride: 4, page_size, seqlen_k }),
        ..Default::default()
    };
    let arg_of = |r: Result<(), Error>| match r {
        Err(Error::InvalidArg { arg, .. }) => arg,
        other => panic!("expected an argument error, got {other:?}"),
    };
    let opts = AttnOptions::default();
    let run = |spec: &KvSpec, opts: &AttnOptions, out: &mut DeviceTensor| {
        rt.forward_ext(&q, &k, &k, out, None, &arrays, spec, opts)
    };
    assert_eq!(arg_of(run(&paged(48, 100), &opts, &mut out)), "page_size");
    assert_eq!(arg_of(run(&paged(32, 100), &opts, &mut out)), "k");
    assert_eq!(arg_of(run(&paged(64, 1000), &opts, &mut out)), "block_table");
    let causal_right = AttnOptions {
        mask: Mask::CausalBottomRight,
        window: Window { left: None, right: Some(3) },
        ..Default::default()
    };
    let kd = rt.alloc_filled(TensorDesc::contiguous_bshd(2, 64, 1, 128, dt), 0).unwrap();
    let none = KvArrays::default();
    let r = rt.forward_ext(&q, &kd, &kd, &mut out, None, &none, &KvSpec::default(), &causal_right);
    assert_eq!(arg_of(r), "window");
    let top_left = AttnOptions { mask: Mask::CausalTopLeft, ..Default::default() };
    let used = upload_i32(&[1, 1]);
    let a2 = KvArrays { seqused_k: Some(&used), ..Default::default() };
    let r = rt.forward_ext(&q, &kd, &kd, &mut out, None, &a2, &KvSpec::default(), &top_left);
    assert_eq!(arg_of(r), "mask");
    let bad_cap = AttnOptions { softcap: Some(-1.0), ..Default::default() };
    assert_eq!(
        arg_of(rt.forward_ext(&q, &kd, &kd, &mut out, None, &KvArrays::default(), &KvSpec::default(), &bad_cap)),
        "softcap"
    );
    let too_many = KvSpec { num_splits: Some(1000), ..Default::default() };
    assert_eq!(
        arg_of(rt.forward_ext(&q, &kd, &kd, &mut out, None, &KvArrays::default(), &too_many, &opts)),
        "num_splits"
    );
}

#[test]
fn mixed_layouts_packed_q_with_paged_or_padded_keys_and_packed_k_with_dense_q() {
    let mut rng = seeded();
    // Chunked prefill against a paged cache: packed queries, keys through the block table.
    for page in [16, 128] {
        let mut c = Case::new(DType::Bf16, 8, 2, 128, &[(5, 300), (64, 64), (33, 1000), (1, 17)]);
        c.mask = Mask::CausalBottomRight;
        c.q_varlen = true;
        c.kv = Kv::Paged { page };
        run_case(&c, &mut rng);
        c.splits = Some(3);
        run_case(&c, &mut rng);
    }
    // Packed queries against a padded cache with seqused_k.
    let mut c = Case::new(DType::F16, 4, 4, 64, &[(3, 200), (1, 1), (40, 900)]);
    c.mask = Mask::CausalBottomRight;
    c.q_varlen = true;
    c.kv = Kv::Cache { smax: 1000 };
    run_case(&c, &mut rng);
    // Dense queries (equal Sq) against packed keys of different lengths.
    let mut c = Case::new(DType::Bf16, 8, 2, 128, &[(2, 700), (2, 3), (2, 129)]);
    c.mask = Mask::CausalBottomRight;
    c.kv = Kv::Varlen;
    run_case(&c, &mut rng);
    c.mask = Mask::None;
    c.splits = Some(4);
    run_case(&c, &mut rng);
}
