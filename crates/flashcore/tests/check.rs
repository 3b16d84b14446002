//! Argument validation: every bad input is a typed error naming the argument.

use flashcore::api::check::{check, check_gpu_alignment, MAX_SEQLEN};
use flashcore::{AttnOptions, DType, Error, Mask, TensorDesc};

fn bshd(b: usize, s: usize, h: usize, d: usize) -> TensorDesc {
    TensorDesc::contiguous_bshd(b, s, h, d, DType::Bf16)
}

fn arg_of(r: flashcore::Result<flashcore::Problem>) -> &'static str {
    match r {
        Err(Error::InvalidArg { arg, .. }) => arg,
        other => panic!("expected InvalidArg, got {other:?}"),
    }
}

#[test]
fn valid_problem_is_described() {
    let q = bshd(2, 100, 8, 64);
    let k = bshd(2, 300, 2, 64);
    let opts = AttnOptions { mask: Mask::CausalBottomRight, ..Default::default() };
    let p = check(&q, &k, &k, &q, &opts).unwrap();
    assert_eq!((p.batch, p.heads, p.kv_heads, p.seqlen_q, p.seqlen_k, p.head_dim), (2, 8, 2, 100, 300, 64));
    assert!((p.scale - 0.125).abs() < 1e-7, "default scale is 1/sqrt(d)");
    assert_eq!(p.mask.causal_offset(100, 300), 200);
}

#[test]
fn each_bad_argument_is_named() {
    let q = bshd(2, 100, 8, 64);
    let k = bshd(2, 300, 2, 64);
    let o = q;
    let ok = AttnOptions::default();
    let mut k_f16 = k;
    k_f16.dtype = DType::F16;
    assert_eq!(arg_of(check(&q, &k_f16, &k, &o, &ok)), "k");
    let mut v_f16 = k;
    v_f16.dtype = DType::F16;
    assert_eq!(arg_of(check(&q, &k, &v_f16, &o, &ok)), "v");
    assert_eq!(arg_of(check(&q, &bshd(3, 300, 2, 64), &bshd(3, 300, 2, 64), &o, &ok)), "k"); // batch
    assert_eq!(arg_of(check(&q, &bshd(2, 300, 2, 128), &bshd(2, 300, 2, 128), &o, &ok)), "k"); // head dim
    assert_eq!(arg_of(check(&q, &k, &bshd(2, 301, 2, 64), &o, &ok)), "v");
    assert_eq!(arg_of(check(&q, &k, &k, &bshd(2, 100, 8, 32), &ok)), "out");
    assert_eq!(arg_of(check(&q, &bshd(2, 300, 3, 64), &bshd(2, 300, 3, 64), &o, &ok)), "k"); // 8 % 3
    assert_eq!(arg_of(check(&q, &bshd(2, 0, 2, 64), &bshd(2, 0, 2, 64), &o, &ok)), "k"); // no keys
    let mut strided = q;
    strided.strides[3] = 2;
    assert_eq!(arg_of(check(&strided, &k, &k, &o, &ok)), "q");
    let mut neg = q;
    neg.strides[1] = -64;
    assert_eq!(arg_of(check(&neg, &k, &k, &o, &ok)), "q");
    let mut huge = bshd(3, 100, 8, 64);
    huge.strides[0] = i64::MAX / 2;
    assert_eq!(arg_of(check(&huge, &bshd(3, 300, 2, 64), &bshd(3, 300, 2, 64), &huge, &ok)), "q"); // overflowing span
    let long = bshd(1, MAX_SEQLEN + 1, 1, 64);
    assert_eq!(arg_of(check(&long, &bshd(1, 10, 1, 64), &bshd(1, 10, 1, 64), &long, &ok)), "q");
    for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let opts = AttnOptions { scale: Some(bad), ..Default::default() };
        assert_eq!(arg_of(check(&q, &k, &k, &o, &opts)), "scale", "scale {bad}");
    }
}

#[test]
fn empty_problems_are_valid_and_empty() {
    let opts = AttnOptions::default();
    for (b, s, h) in [(0, 10, 4), (2, 0, 4), (2, 10, 0)] {
        let q = bshd(b, s, h, 64);
        let k = bshd(b, 10, if h == 0 { 1 } else { h }, 64);
        let p = check(&q, &k, &k, &q, &opts).unwrap();
        assert!(p.is_empty());
    }
}

#[test]
fn gpu_alignment_rules() {
    let q = bshd(2, 100, 8, 64);
    assert!(check_gpu_alignment("q", &q, 0x1000).is_ok());
    for (ptr, why) in [(0u64, "null"), (0x1008, "16-byte")] {
        match check_gpu_alignment("q", &q, ptr) {
            Err(Error::InvalidArg { arg: "q", why: w }) => assert!(w.contains(why), "{w}"),
            other => panic!("{other:?}"),
        }
    }
    let mut odd = q;
    odd.strides[1] = 8 * 64 + 4;
    assert!(matches!(check_gpu_alignment("k", &odd, 0x1000), Err(Error::InvalidArg { arg: "k", .. })));
    // A BHSD view is fine: its strides are multiples of 8.
    assert!(check_gpu_alignment("q", &TensorDesc::contiguous_bhsd(2, 100, 8, 64, DType::F16), 0x2000).is_ok());
}

#[test]
fn layouts_describe_the_same_logical_tensor() {
    let a = TensorDesc::contiguous_bshd(2, 3, 4, 16, DType::F16);
    let b = TensorDesc::contiguous_bhsd(2, 3, 4, 16, DType::F16);
    assert_eq!(a.span(), Some(2 * 3 * 4 * 16));
    assert_eq!(b.span(), Some(2 * 3 * 4 * 16));
    assert_eq!(a.like(), a);
    assert_eq!(b.like(), b);
}

#[test]
fn backward_checks_name_each_gradient_and_input() {
    use flashcore::api::check::check_backward;
    use flashcore::BwdOptions;
    let q = bshd(2, 100, 8, 64);
    let k = bshd(2, 300, 2, 64);
    let opts = BwdOptions { mask: Mask::CausalTopLeft, ..Default::default() };
    let p = check_backward(&q, &k, &k, &q, &q, &q, &k, &k, &opts).unwrap();
    assert_eq!((p.heads, p.kv_heads, p.seqlen_q, p.seqlen_k), (8, 2, 100, 300));
    // Layouts may differ between inputs and gradients.
    let qb = TensorDesc::contiguous_bhsd(2, 100, 8, 64, DType::Bf16);
    let kb = TensorDesc::contiguous_bhsd(2, 300, 2, 64, DType::Bf16);
    assert!(check_backward(&q, &k, &k, &q, &qb, &qb, &kb, &kb, &opts).is_ok());

    let run = |dout: TensorDesc, dq: TensorDesc, dk: TensorDesc, dv: TensorDesc| {
        arg_of(check_backward(&q, &k, &k, &q, &dout, &dq, &dk, &dv, &opts))
    };
    let mut f16 = q;
    f16.dtype = DType::F16;
    let mut kf16 = k;
    kf16.dtype = DType::F16;
    assert_eq!(run(f16, q, k, k), "dout");
    assert_eq!(run(bshd(2, 101, 8, 64), q, k, k), "dout");
    assert_eq!(run(q, f16, k, k), "dq");
    assert_eq!(run(q, bshd(2, 100, 4, 64), k, k), "dq");
    assert_eq!(run(q, q, kf16, k), "dk");
    assert_eq!(run(q, q, bshd(2, 300, 2, 32), k), "dk");
    assert_eq!(run(q, q, k, kf16), "dv");
    assert_eq!(run(q, q, k, bshd(2, 299, 2, 64)), "dv");
    let mut strided = k;
    strided.strides[3] = 2;
    assert_eq!(run(q, q, k, strided), "dv");
    // The forward's rules apply to the inputs, and the scale is checked.
    let k3 = bshd(2, 300, 3, 64);
    assert_eq!(arg_of(check_backward(&q, &k3, &k3, &q, &q, &q, &k, &k, &opts)), "k"); // 8 % 3
    assert_eq!(arg_of(check_backward(&q, &k, &k, &bshd(2, 100, 8, 32), &q, &q, &k, &k, &opts)), "out");
    let bad_scale = BwdOptions { scale: Some(-1.0), ..opts };
    assert_eq!(arg_of(check_backward(&q, &k, &k, &q, &q, &q, &k, &k, &bad_scale)), "scale");
    // A window as the forward takes it: a causal mask is its right edge at 0.
    let window = |left, right| flashcore::Window { left, right };
    let causal_right = BwdOptions { window: window(Some(16), Some(1)), ..opts };
    assert_eq!(arg_of(check_backward(&q, &k, &k, &q, &q, &q, &k, &k, &causal_right)), "window");
    for w in [window(Some(16), Some(0)), window(Some(0), None)] {
        let p = check_backward(&q, &k, &k, &q, &q, &q, &k, &k, &BwdOptions { window: w, ..opts }).unwrap();
        assert_eq!(p.window, w);
    }
    let sides = BwdOptions { mask: Mask::None, window: window(Some(3), Some(9)), ..opts };
    assert_eq!(check_backward(&q, &k, &k, &q, &q, &q, &k, &k, &sides).unwrap().window, window(Some(3), Some(9)));
}
