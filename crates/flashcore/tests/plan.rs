//! The planner: tile table, variants, grid. No GPU needed.

use flashcore::plan::tiles::{parse_tile, supported_head_dim, tile_config, LONG_ROWS};
use flashcore::plan::{forward_launch, Arch, Variant};
use flashcore::{DType, Error, Mask, Problem};
use std::collections::HashSet;

const ARCHS: [Arch; 4] = [Arch::SM80, Arch { major: 8, minor: 6 }, Arch { major: 8, minor: 9 }, Arch::SM90];

#[test]
fn every_supported_head_dim_gets_a_tile_that_fits_every_arch() {
    for arch in ARCHS {
        for d in (16..=256).step_by(16) {
            for sk in [1, 100, LONG_ROWS, 1 << 17] {
                let t = tile_config(arch, d, Mask::None, sk, arch.max_smem_per_block())
                    .unwrap_or_else(|e| panic!("{arch} d{d} sk{sk}: {e}"));
                assert!(t.smem_bytes(d) <= arch.max_smem_per_block(), "{arch} d{d}: {t}");
                assert_eq!(t.threads(), t.block_m() / 16 * 32);
            }
        }
    }
}

#[test]
fn unsupported_head_dims_are_clear_errors() {
    for d in [0, 8, 24, 72, 100, 264, 512] {
        assert!(!supported_head_dim(d));
        match tile_config(Arch::SM90, d, Mask::None, 1024, 227 * 1024) {
            Err(Error::Unsupported(msg)) => assert!(msg.contains(&format!("head dim {d}")), "{msg}"),
            other => panic!("d{d}: expected Unsupported, got {other:?}"),
        }
    }
}

#[test]
fn standard_set_covers_every_axis_once() {
    for arch in [Arch::SM80, Arch::SM90] {
        let set = Variant::standard_set(arch);
        let names: HashSet<String> = set.iter().map(|v| v.to_string()).collect();
        assert_eq!(names.len(), set.len(), "variant names are unique");
        for d in (16..=256).step_by(16) {
            for dt in [DType::F16, DType::Bf16] {
                for causal in [false, true] {
                    assert!(
                        set.iter().any(|v| v.head_dim == d && v.dtype == dt && v.causal == causal),
                        "{arch} d{d} {dt:?} causal={causal} missing"
                    );
                }
            }
        }
        // Every variant the planner can pick for this arch is in the set (warmup and CI compile it).
        for d in (16..=256).step_by(16) {
            for sk in [1, 777, LONG_ROWS, 1 << 20] {
                let v = Variant::forward(arch, d, DType::Bf16, Mask::CausalBottomRight, sk, arch.max_smem_per_block())
                    .unwrap();
                assert!(set.contains(&v), "{v} not in the standard set");
            }
        }
    }
}

#[test]
fn gqa_groups_pack_into_hopper_tiles_only_for_short_queries() {
    use flashcore::plan::{rows_per_head, sm90_pack};
    let prob = |h: usize, hkv: usize, sq: usize, d: usize| Problem {
        batch: 2,
        heads: h,
        kv_heads: hkv,
        seqlen_q: sq,
        seqlen_k: 4096,
        head_dim: d,
        dtype: DType::Bf16,
        mask: Mask::CausalBottomRight,
        scale: 0.1,
        window: Default::default(),
        softcap: None,
    };
    // Largest pack dividing the group with 16, 32 or 64 rows per head that still holds Sq.
    assert_eq!(sm90_pack(128, &prob(32, 8, 1, 128)), 4);
    assert_eq!(sm90_pack(128, &prob(32, 8, 33, 128)), 2);
    assert_eq!(sm90_pack(128, &prob(16, 1, 8, 128)), 8);
    assert_eq!(sm90_pack(128, &prob(16, 1, 17, 128)), 4);
    assert_eq!(sm90_pack(128, &prob(32, 8, 65, 128)), 1, "long queries: one head per tile");
    assert_eq!(sm90_pack(128, &prob(32, 32, 1, 128)), 1, "no group");
    assert_eq!(sm90_pack(128, &prob(12, 4, 1, 128)), 1, "a group of 3 has no 16/32/64-row split of 128");
    assert_eq!(sm90_pack(192, &prob(12, 4, 1, 64)), 3);
    // d64: the 192-row tile gives way to 128 rows where only those pack the group.
    let p = prob(32, 8, 16, 64);
    let v = Variant::forward_for(Arch::SM90, &p, 227 * 1024).unwrap();
    assert_eq!(v.tile.block_m(), 128, "{v}");
    assert_eq!(rows_per_head(&v, &p), 32);
    let l = forward_launch(&v, &p, 132);
    assert_eq!(l.grid.0, 2 * 8, "one tile per (kv head, batch)");
    let p = prob(32, 8, 4096, 64);
    let v = Variant::forward_for(Arch::SM90, &p, 227 * 1024).unwrap();
    assert_eq!((v.tile.block_m(), rows_per_head(&v, &p)), (192, 192));
}

#[test]
fn short_causal_d64_runs_three_ctas_per_sm_on_hopper() {
    let prob = |sq: usize, sk: usize, mask: Mask| Problem {
        batch: 32,
        heads: 32,
        kv_heads: 32,
        seqlen_q: sq,
        seqlen_k: sk,
        head_dim: 64,
        dtype: DType::Bf16,
        mask,
        scale: 0.125,
        window: Default::default(),
        softcap: None,
    };
    let smem = 227 * 1024;
    let set = Variant::standard_set(Arch::SM90);
    for sq in [1, 512, 1024] {
        let p = prob(sq, 1024, Mask::CausalTopLeft);
        let v = Variant::forward_for(Arch::SM90, &p, smem).unwrap();
        let t = v.tile;
        assert_eq!((t.block_m(), t.block_n(), t.min_blocks_per_sm()), (64, 64, 3), "{v}");
        assert_eq!(v.threads(), 256, "a producer and one consumer warpgroup");
        assert!(v.to_string().contains("-64x64o3s2"), "{v}");
        // Three such CTAs (and the LSE-free build's block of ones) fit an SM's 228 KiB, 1 KiB each
        // reserved.
        for w in [v, v.with_sum_mma(false)] {
            assert!(3 * (w.smem_bytes() + 1024) <= 228 * 1024, "{w}: {} bytes", w.smem_bytes());
            assert!(set.contains(&w), "{w} not in the standard set");
        }
        let l = forward_launch(&v, &p, 132);
        let tiles = 32 * 32 * sq.div_ceil(64) as u32;
        assert_eq!(l.grid.0, tiles.min(3 * 132), "persistent: three CTAs per SM");
    }
    // Longer rows, no mask, more queries than keys allow, or the inference builds: one CTA per SM.
    for (p, infer) in [
        (prob(2048, 2048, Mask::CausalTopLeft), false),
        (prob(512, 512, Mask::None), false),
        (prob(4097, 1000, Mask::CausalBottomRight), false),
        (prob(512, 512, Mask::CausalTopLeft), true),
    ] {
        let v = Variant::forward_ext(Arch::SM90, &p, infer, smem).unwrap();
        assert_eq!(v.tile.min_blocks_per_sm(), 1, "{v}");
        assert!(v.tile.block_m() >= 128, "{v}");
    }
}

#[test]
fn variant_renders_its_defines_and_arch() {
    let v = Variant::forward(Arch::SM90, 128, DType::Bf16, Mask::CausalTopLeft, 4096, 227 * 1024).unwrap();
    let opts = v.options();
    assert!(opts.contains(&"-arch=sm_90a".to_string()));
    for d in ["-DFC_HEAD_DIM=128", "-DFC_DTYPE_BF16=1", "-DFC_CAUSAL=1"] {
        assert!(opts.iter().any(|o| o == d), "{d} missing from {opts:?}");
    }
    assert!(v.to_string().starts_with("fwd_sm90-sm_90a-d128-bf16-causal-"), "{v}");
    assert_eq!(v.threads(), 384, "a producer warpgroup and two consumer warpgroups");
    // Head dims the wgmma kernel does not serve stay on the portable kernel.
    let w = Variant::forward(Arch::SM90, 80, DType::Bf16, Mask::None, 4096, 227 * 1024).unwrap();
    assert!(w.to_string().starts_with("fwd_sm80-sm_90a-d80"), "{w}");
    // d 96 runs on the wgmma kernel with its tiles padded to two 64-column blocks.
    let n = Variant::forward(Arch::SM90, 96, DType::Bf16, Mask::None, 4096, 227 * 1024).unwrap();
    assert!(n.to_string().starts_with("fwd_sm90-sm_90a-d96"), "{n}");
    assert!(n.smem_bytes() <= 227 * 1024);
    let a = Variant::forward(Arch::SM80, 64, DType::F16, Mask::None, 512, 163 * 1024).unwrap();
    assert!(a.options().contains(&"-arch=sm_80".to_string()));
    assert!(a.options().contains(&"-DFC_CAUSAL=0".to_string()));
}

#[test]
fn arch_parsing() {
    assert_eq!("sm_90a".parse::<Arch>().unwrap(), Arch::SM90);
    assert_eq!("sm_80".parse::<Arch>().unwrap(), Arch::SM80);
    assert_eq!("sm_120".parse::<Arch>().unwrap(), Arch { major: 12, minor: 0 });
    assert!("sm_75".parse::<Arch>().is_err(), "pre-Ampere is rejected");
    assert!("banana".parse::<Arch>().is_err());
}

#[test]
fn tile_strings_parse_and_validate() {
    let t = parse_tile("128x64o1s3").unwrap();
    assert_eq!((t.block_m(), t.block_n(), t.min_blocks_per_sm(), t.stages()), (128, 64, 1, 3));
    let t = parse_tile("64x32").unwrap();
    assert_eq!((t.min_blocks_per_sm(), t.stages()), (1, 2));
    // Up to 6 stages for Hopper tuning runs (the sm80 forward asserts 2 or 3 in its kernel).
    assert_eq!(parse_tile("128x64o1s6").unwrap().stages(), 6);
    for bad in ["", "128", "100x64", "128x64o9", "128x64o1s1", "128x64o1s7", "axb"] {
        assert!(parse_tile(bad).is_err(), "{bad}");
    }
}

#[test]
fn grid_covers_every_query_row() {
    for sq in [1, 63, 64, 65, 1000, 131072] {
        let p = Problem {
            batch: 3,
            heads: 5,
            kv_heads: 1,
            seqlen_q: sq,
            seqlen_k: 77,
            head_dim: 64,
            dtype: DType::F16,
            mask: Mask::None,
            scale: 0.125,
            window: Default::default(),
            softcap: None,
        };
        let v = Variant::sm80(Arch::SM90, 64, DType::F16, Mask::None, 77, 227 * 1024).unwrap();
        let l = forward_launch(&v, &p, 132);
        assert!(l.grid.0 as usize * v.tile.block_m() >= sq);
        assert!((l.grid.0 as usize - 1) * v.tile.block_m() < sq);
        assert_eq!((l.grid.1, l.grid.2), (5, 3));
        assert_eq!(l.smem_bytes as usize, v.smem_bytes());
    }
}

#[test]
fn hopper_grid_is_persistent() {
    for (sq, b, h) in [(1, 1, 1), (512, 16, 96), (131072, 1, 16)] {
        let p = Problem {
            batch: b,
            heads: h,
            kv_heads: h,
            seqlen_q: sq,
            seqlen_k: sq,
            head_dim: 128,
            dtype: DType::Bf16,
            mask: Mask::CausalTopLeft,
            scale: 0.1,
            window: Default::default(),
            softcap: None,
        };
        let v = Variant::sm90(128, DType::Bf16, Mask::CausalTopLeft, 227 * 1024).unwrap();
        let l = forward_launch(&v, &p, 132);
        let tiles = sq.div_ceil(v.tile.block_m()) * b * h;
        assert_eq!(l.grid, (tiles.min(132) as u32, 1, 1));
        assert_eq!(l.block.0, 384);
    }
}

#[test]
fn hopper_clusters_pair_the_query_blocks_of_dense_non_causal_heads() {
    let prob = |sq: usize, d: usize, mask: Mask, hkv: usize| bf16_problem(8, hkv, sq, 4096, d, mask);
    let pick = |p: &Problem| Variant::forward_for(Arch::SM90, p, 227 * 1024).unwrap();
    for d in [96, 128, 256] {
        let p = prob(4096, d, Mask::None, 8);
        // d96 / d128 take clusters from 32K keys, d256 at any length.
        let p = Problem { seqlen_k: if d == 256 { 4096 } else { 32768 }, ..p };
        let v = pick(&p);
        assert!(v.ext.cluster && v.to_string().ends_with("-c2"), "{v}");
        assert!(v.options().iter().any(|o| o == "-DFC_SM90_CLUSTER=2"), "{v}");
        assert!(Variant::standard_set(Arch::SM90).contains(&v), "{v} not compiled by warmup / CI");
        let l = forward_launch(&v, &p, 132);
        assert_eq!(l.grid, (132, 1, 1), "one cluster of two per SM pair");
        // Fewer tile pairs than clusters: one cluster per pair.
        let short = Problem { batch: 1, heads: 3, seqlen_q: 2 * v.tile.block_m(), ..p };
        assert_eq!(forward_launch(&v, &short, 132).grid.0, 6);
    }
    let no = |p: Problem, why: &str| assert!(!pick(&p).ext.cluster, "{why}: {}", pick(&p));
    no(prob(4096, 128, Mask::None, 8), "d128 with 4K keys: measured level");
    let prob = |sq: usize, d: usize, mask: Mask, hkv: usize| Problem { seqlen_k: 65536, ..prob(sq, d, mask, hkv) };
    for mask in [Mask::CausalTopLeft, Mask::CausalBottomRight] {
        let v = pick(&prob(4096, 128, mask, 8));
        assert!(v.ext.cluster && v.causal, "causal pairs stream the longer tile's blocks: {v}");
        assert!(Variant::standard_set(Arch::SM90).contains(&v), "{v} not compiled by warmup / CI");
    }
    no(prob(3 * 128, 128, Mask::None, 8), "odd number of query blocks per head");
    no(prob(4096, 64, Mask::None, 8), "d64: one d block to split");
    no(prob(16, 128, Mask::None, 2), "packed GQA tiles");
    no(Problem { softcap: Some(30.0), ..prob(4096, 128, Mask::None, 8) }, "softcap");
    no(
        Problem { window: flashcore::Window { left: Some(128), right: Some(0) }, ..prob(4096, 128, Mask::None, 8) },
        "window",
    );
    assert!(!Variant::forward_for(Arch::SM80, &prob(4096, 128, Mask::None, 8), 163 * 1024).unwrap().ext.cluster);
}

#[test]
fn lse_free_calls_take_the_row_sums_from_the_tensor_cores_at_d64_only() {
    let prob = |sq: usize, d: usize, mask: Mask, hkv: usize| Problem {
        batch: 2,
        heads: 8,
        kv_heads: hkv,
        seqlen_q: sq,
        seqlen_k: sq,
        head_dim: d,
        dtype: DType::F16,
        mask,
        scale: 0.1,
        window: Default::default(),
        softcap: None,
    };
    let pick = |p: &Problem| Variant::forward_for(Arch::SM90, p, 227 * 1024).unwrap();
    let set = Variant::standard_set(Arch::SM90);
    // Both d64 tiles (192 rows; 128 for short causal rows and packed GQA), every mask.
    for (sq, hkv) in [(4096, 8), (512, 8), (16, 2)] {
        for mask in [Mask::None, Mask::CausalTopLeft, Mask::CausalBottomRight] {
            let v = pick(&prob(sq, 64, mask, hkv));
            assert!(!v.sum_mma(), "planned without knowing about the LSE: {v}");
            assert_eq!(v.with_sum_mma(true), v, "a call that wants the LSE keeps the FADD sums");
            let s = v.with_sum_mma(false);
            assert!(s.sum_mma() && s.to_string().ends_with("-lsum"), "{s}");
            assert!(s.options().iter().any(|o| o == "-DFC_SM90_SUM_MMA=1"), "{s}");
            // kOnesBytes: one block_n x 128-byte block of ones after the ring.
            assert_eq!(s.smem_bytes(), v.smem_bytes() + v.tile.block_n() * 128, "{s}");
            assert!(set.contains(&s), "{s} not compiled by warmup / CI");
        }
    }
    // Not at d96 / d128 / d256 (measured slower at d128, NOTES session 10), not on the portable kernel,
    // not on the inference paths' builds, and not for FP8 unless asked for.
    for d in [96, 128, 256] {
        let v = pick(&prob(4096, d, Mask::None, 8));
        assert_eq!(v.with_sum_mma(false), v, "{v}");
    }
    let sm80 = Variant::forward_for(Arch::SM80, &prob(4096, 64, Mask::None, 8), 163 * 1024).unwrap();
    assert_eq!(sm80.with_sum_mma(false), sm80);
    let infer = Variant::forward_ext(Arch::SM90, &prob(4096, 64, Mask::None, 8), true, 227 * 1024).unwrap();
    assert_eq!(infer.with_sum_mma(false), infer);
    let fp8 = Variant::fp8_forward(128, DType::Bf16, Mask::None, 4096, false, 227 * 1024).unwrap();
    assert_eq!(fp8.with_sum_mma(false), fp8);
    // FP8's P factor takes e4m3's whole range, so its softmax keeps no rescale slack (NOTES session 10).
    for o in ["-DFC_FP8_P_LOG2=8", "-DFC_RESCALE_SLACK=0"] {
        assert!(fp8.options().iter().any(|x| x == o), "{fp8}: {o}");
    }
}

#[test]
fn flops_follow_the_peer_convention() {
    let mut p = Problem {
        batch: 2,
        heads: 16,
        kv_heads: 16,
        seqlen_q: 4096,
        seqlen_k: 4096,
        head_dim: 128,
        dtype: DType::Bf16,
        mask: Mask::None,
        scale: 0.1,
        window: Default::default(),
        softcap: None,
    };
    assert_eq!(p.flops(), 4.0 * 2.0 * 16.0 * 4096.0 * 4096.0 * 128.0);
    p.mask = Mask::CausalTopLeft;
    assert_eq!(p.flops(), 2.0 * 2.0 * 16.0 * 4096.0 * 4096.0 * 128.0);
}

#[test]
fn backward_picks_the_hopper_kernel_for_d64_d96_and_d128_on_sm90_only() {
    use flashcore::plan::backward::{sm90_bwd_dq_buffers, sm90_bwd_smem_bytes, sm90_bwd_tile_config};
    use flashcore::plan::{BwdPath, KernelKind, Sm90BwdOverlap};
    let smem = Arch::SM90.max_smem_per_block();
    for d in (16..=128).step_by(16) {
        for mask in [Mask::None, Mask::CausalTopLeft] {
            let auto = Variant::backward(Arch::SM90, d, DType::Bf16, mask, smem).unwrap();
            let want = if d == 64 || d == 96 || d == 128 { KernelKind::BwdSm90 } else { KernelKind::BwdSm80 };
            // FLASHCORE_SM90_BWD=0 in the environment of this test process would force sm80 (and
            // FLASHCORE_SM90_BWD_DQ_SMEM=0 at d 96).
            let forced = ["FLASHCORE_SM90_BWD", "FLASHCORE_FORCE_SM80", "FLASHCORE_SM90_BWD_DQ_SMEM"];
            if forced.iter().all(|k| std::env::var(k).is_err()) {
                assert_eq!(auto.kind, want, "d{d}");
            }
            let portable = Variant::backward_on(BwdPath::Sm80, Arch::SM90, d, DType::Bf16, mask, smem).unwrap();
            assert_eq!(portable.kind, KernelKind::BwdSm80);
            // Every backward the planner can pick on sm_90a is compiled by warmup and CI.
            let set = Variant::standard_set(Arch::SM90);
            assert!(set.contains(&auto) && set.contains(&portable), "{auto} / {portable} not in the standard set");
            assert!(
                set.contains(&auto.bwd_aux(KernelKind::BwdPrep)) && set.contains(&auto.bwd_aux(KernelKind::BwdPost))
            );
            // Other archs never get the Hopper kernel.
            let a100 = Variant::backward(Arch::SM80, d, DType::Bf16, mask, Arch::SM80.max_smem_per_block()).unwrap();
            assert_eq!(a100.kind, KernelKind::BwdSm80);
        }
    }
    for d in [64, 128] {
        // Causal: the 64-row tile at d 128 (non-causal d 128 on the shared-memory path takes 80 rows, below).
        let v = Variant::backward_sm90_with(d, DType::F16, Mask::CausalTopLeft, smem, false).unwrap();
        assert_eq!(v.threads(), 384, "a producer and two consumer warpgroups");
        assert_eq!(v.tile.block_n(), 128);
        // kernels/sm90/bwd_config.cuh: 160 KiB of 16-bit tiles at both head dims, two stages of
        // fp32 lse2 and dsum, 1 KiB + 64 bytes for alignment and mbarriers.
        assert_eq!(v.smem_bytes(), sm90_bwd_smem_bytes(&v.tile, d, false));
        assert_eq!(v.smem_bytes(), 160 * 1024 + 2 * 2 * 4 * v.tile.block_m() + 1024 + 64);
        assert!(v.smem_bytes() <= smem);
        assert!(v.to_string().starts_with("bwd_sm90-sm_90a-"), "{v}");
        // FLASHCORE_SM90_BWD_DQ_SMEM=1: + 32 KiB fp32 dQ tiles, two at d 128 (227 KiB exactly), one
        // at d 64; the post kernel reads the swizzled accumulator, prep is shared.
        let q = Variant::backward_sm90_with(d, DType::F16, Mask::CausalTopLeft, smem, true).unwrap();
        let bufs = if d == 128 { 2 } else { 1 };
        assert_eq!(sm90_bwd_dq_buffers(&q.tile, d, true), bufs);
        assert_eq!(q.smem_bytes(), v.smem_bytes() + bufs * 32 * 1024);
        assert!(q.smem_bytes() <= smem);
        assert!(q.to_string().ends_with("-dqsmem"), "{q}");
        assert!(q.options().contains(&"-DFC_SM90_BWD_DQ_SMEM=1".to_string()));
        assert!(!v.options().iter().any(|o| o.contains("DQ_SMEM")));
        assert!(q.bwd_aux(KernelKind::BwdPost).bwd_dq_smem());
        assert_eq!(q.bwd_aux(KernelKind::BwdPrep), v.bwd_aux(KernelKind::BwdPrep));
        assert_eq!(q.bwd_without_dq_smem(), v);
        // The main-loop overlap knobs (FLASHCORE_SM90_BWD_PINGPONG / _PIPE): main kernel only, the
        // pipe only on the shared-memory dQ path; the deterministic fallback drops both.
        let on = |pingpong, pipe| Sm90BwdOverlap { pingpong, pipe, det: false };
        let pp = q.with_bwd_overlap(on(true, false));
        let pipe = q.with_bwd_overlap(on(false, true));
        let both = q.with_bwd_overlap(on(true, true));
        let pp_red = v.with_bwd_overlap(on(true, true));
        assert!(pp.to_string().ends_with("-dqsmem-pp") && pipe.to_string().ends_with("-dqsmem-pipe"), "{pp} {pipe}");
        assert!(both.to_string().ends_with("-pp-pipe"), "{both}");
        assert_eq!(pp_red.bwd_overlap, on(true, false), "pipe needs the shared-memory dQ path");
        assert!(pp.options().contains(&"-DFC_SM90_BWD_PINGPONG=1".to_string()));
        assert!(!pp.options().iter().any(|o| o.contains("BWD_PIPE")));
        assert!(both.options().contains(&"-DFC_SM90_BWD_PIPE=1".to_string()));
        assert!(!q.options().iter().any(|o| o.contains("PINGPONG") || o.contains("BWD_PIPE")));
        assert_eq!(both.bwd_aux(KernelKind::BwdPost), q.bwd_aux(KernelKind::BwdPost));
        assert_eq!(both.bwd_without_dq_smem(), v);
        assert_eq!(q.bwd_aux(KernelKind::BwdPrep).with_bwd_overlap(on(true, true)), q.bwd_aux(KernelKind::BwdPrep));
        let set = Variant::standard_set(Arch::SM90);
        for x in [v, q, pp, pipe, both, pp_red] {
            for k in [x, x.bwd_aux(KernelKind::BwdPrep), x.bwd_aux(KernelKind::BwdPost)] {
                assert!(set.contains(&k), "{k} not in the standard set");
            }
        }
    }
    assert!(sm90_bwd_tile_config(80, false, smem, true).is_err());
    assert!(sm90_bwd_tile_config(128, false, 99 * 1024, false).is_err());

    // d 96: the Hopper kernel with dQ transposed (two 64-value d blocks, the second half-filled),
    // shared-memory dQ only; its red.global fallback (FLASHCORE_SM90_BWD_DQ_SMEM=0, and the
    // deterministic mode with a window) is the portable kernel, its deterministic mode the ordered
    // bulk reduce at 64 rows.
    assert!(sm90_bwd_tile_config(96, false, smem, false).is_err(), "d 96 needs the shared-memory dQ path");
    for mask in [Mask::None, Mask::CausalTopLeft] {
        let pipe = Sm90BwdOverlap { pingpong: false, pipe: true, det: false };
        let v = Variant::backward_sm90_with(96, DType::Bf16, mask, smem, true).unwrap().with_bwd_overlap(pipe);
        let t = sm90_bwd_tile_config(96, mask.is_causal(), smem, true).unwrap();
        assert_eq!(v.tile, t);
        // K, V and two stages of Q and dO padded to 128 columns, like d 128's; the dQ tiles are 96 wide.
        let rows = t.block_m();
        let base = 64 * 1024 + 2 * 2 * rows * 256 + 2 * 2 * rows * 4 + 2 * 128 * rows * 2 + 1024 + 64;
        assert_eq!(v.smem_bytes(), base + sm90_bwd_dq_buffers(&t, 96, true) * rows * 96 * 4);
        assert!(v.smem_bytes() <= smem, "{v}: {}", v.smem_bytes());
        let red = v.bwd_without_dq_smem();
        assert_eq!(red.kind, KernelKind::BwdSm80, "{red}");
        assert_eq!(red.tile, flashcore::plan::backward::bwd_tile_config(96, smem).unwrap());
        let det = v.bwd_deterministic();
        assert_eq!((det.kind, det.tile.block_m(), det.bwd_overlap.det), (KernelKind::BwdSm90, 64, true), "{det}");
        let set = Variant::standard_set(Arch::SM90);
        for k in [v, red, det, v.bwd_aux(KernelKind::BwdPrep), v.bwd_aux(KernelKind::BwdPost)] {
            assert!(set.contains(&k), "{k} not in the standard set");
        }
    }

    // The 80-row tile at d 128: the planner's choice without a causal mask on the shared-memory dQ
    // path (unless FLASHCORE_SM90_BWD_TILE forces one); one 40 KiB dQ tile, within 227 KiB; the
    // deterministic and red.global fallbacks go back to 64 rows, and warmup / CI compile it with its
    // prep and post kernels, causal included.
    let set = Variant::standard_set(Arch::SM90);
    for mask in [Mask::None, Mask::CausalTopLeft] {
        let auto = Variant::backward_sm90_with(128, DType::Bf16, mask, smem, true).unwrap();
        if std::env::var("FLASHCORE_SM90_BWD_TILE").is_err() {
            assert_eq!(auto.tile.block_m(), if mask.is_causal() { 64 } else { 80 }, "{auto}");
        }
        let q = auto.with_bwd_block_m(64, smem).unwrap().with_bwd_overlap(Sm90BwdOverlap {
            pingpong: false,
            pipe: true,
            det: false,
        });
        assert_eq!(q.tile.block_m(), 64);
        assert!(set.contains(&q), "{q}: FLASHCORE_SM90_BWD_TILE=64 is compile-checked too");
        let r80 = q.with_bwd_block_m(80, smem).unwrap();
        assert_eq!((r80.tile.block_m(), r80.tile.block_n()), (80, 128));
        assert_eq!(sm90_bwd_dq_buffers(&r80.tile, 128, true), 1);
        assert_eq!(r80.smem_bytes(), 64 * 1024 + 80 * 1024 + 40 * 1024 + 1280 + 40 * 1024 + 1024 + 64);
        assert!(r80.smem_bytes() <= smem);
        assert!(r80.to_string().contains("-80x128"), "{r80}");
        assert_eq!(r80.bwd_deterministic().tile, q.tile);
        assert_eq!(r80.bwd_without_dq_smem().tile, q.tile);
        for k in [r80, r80.bwd_aux(KernelKind::BwdPrep), r80.bwd_aux(KernelKind::BwdPost)] {
            assert!(set.contains(&k), "{k} not in the standard set");
        }
        let red = Variant::backward_sm90_with(128, DType::Bf16, mask, smem, false).unwrap();
        assert!(red.with_bwd_block_m(80, smem).is_err(), "80 rows need the shared-memory dQ path");
        let d64 = Variant::backward_sm90_with(64, DType::Bf16, mask, smem, true).unwrap();
        assert!(d64.with_bwd_block_m(80, smem).is_err());
        assert!(q.with_bwd_block_m(96, smem).is_err());
    }
}

#[test]
fn fp8_transposes_v_in_the_kernel_only_where_the_pass_costs_more() {
    let prob =
        |sq: usize, d: usize, mask: Mask, heads: usize, kv_heads: usize| bf16_problem(heads, kv_heads, sq, sq, d, mask);
    let pick = |p: &Problem| {
        Variant::fp8_forward(p.head_dim, p.dtype, p.mask, p.seqlen_k, false, 227 * 1024).unwrap().with_vt_smem(p)
    };
    let fp8_set = Variant::fp8_set();
    // Query rows x GQA group, halved when causal, up to VT_SMEM_MAX_ROWS (2048); d256's staging
    // slots do not fit beside its ring (FLASHCORE_SM90_VT_SMEM unset in tests).
    for (sq, d, mask, h, hkv, want) in [
        (1024, 128, Mask::None, 16, 16, true),
        (2048, 128, Mask::None, 16, 16, true),
        (4096, 128, Mask::None, 16, 16, false),
        (4096, 128, Mask::CausalTopLeft, 16, 16, true),
        (8192, 128, Mask::CausalTopLeft, 16, 16, false),
        (1024, 64, Mask::None, 32, 32, true),
        (1024, 128, Mask::None, 16, 4, false),
        (512, 128, Mask::None, 16, 4, true),
        (1024, 256, Mask::None, 8, 8, false),
    ] {
        let v = pick(&prob(sq, d, mask, h, hkv));
        assert_eq!(v.fp8_vt_smem(), want, "{v}: sq {sq} d {d} {mask:?} {h}/{hkv}");
        assert_eq!(v.to_string().ends_with("-vts"), want, "{v}");
        assert_eq!(v.options().iter().any(|o| o == "-DFC_SM90_VT_SMEM=1"), want, "{v}");
        assert!(fp8_set.contains(&v), "{v} not compiled by warmup / CI");
        // Its staging slots are in the launch's shared memory (scripts/check_smem.py checks the kernel's count).
        let base = Variant::fp8_forward(d, DType::Bf16, mask, sq, false, 227 * 1024).unwrap();
        let staging = if want { 2 * d.div_ceil(128) * v.tile.block_n() * 128 } else { 0 };
        assert_eq!(v.smem_bytes(), base.smem_bytes() + staging, "{v}");
    }
}

/// Batch 2, bf16, scale 0.1, no window or softcap.
fn bf16_problem(
    heads: usize,
    kv_heads: usize,
    seqlen_q: usize,
    seqlen_k: usize,
    head_dim: usize,
    mask: Mask,
) -> Problem {
    Problem {
        batch: 2,
        heads,
        kv_heads,
        seqlen_q,
        seqlen_k,
        head_dim,
        dtype: DType::Bf16,
        mask,
        scale: 0.1,
        window: Default::default(),
        softcap: None,
    }
}

#[test]
fn hopper_backward_converts_dq_in_the_kernel_only_where_rows_remain_after_the_lag() {
    use flashcore::plan::backward::sm90_bwd_convert;
    use flashcore::plan::Sm90BwdOverlap;
    let smem = Arch::SM90.max_smem_per_block();
    let problem = |b: usize, h: usize, hkv: usize, s: usize, d: usize, mask: Mask| Problem {
        batch: b,
        ..bf16_problem(h, hkv, s, s, d, mask)
    };
    let pipe = Sm90BwdOverlap { pingpong: false, pipe: true, det: false };
    let main = |d: usize, mask: Mask| {
        Variant::backward_sm90_with(d, DType::Bf16, mask, smem, true).unwrap().with_bwd_overlap(pipe)
    };
    // D128 S1K B16 H16: 256 grid rows of 8 key blocks; a wave is 17 rows, so the lag is 18 and the
    // post kernel keeps the last 18.
    let v = main(128, Mask::None);
    let p = problem(16, 16, 16, 1024, 128, Mask::None);
    assert_eq!(sm90_bwd_convert(&v, &p, 8, 1, 132, true, None), (18, 238));
    assert_eq!(sm90_bwd_convert(&v, &p, 8, 1, 132, false, None), (0, 0), "off: the post kernel converts");
    // S16K B1 H16: 16 rows of 128 key blocks: a wave spans 2 rows, lag 3.
    assert_eq!(sm90_bwd_convert(&v, &problem(1, 16, 16, 16384, 128, Mask::None), 128, 1, 132, true, None), (3, 13));
    // Not with a causal mask (it measured slower), softcap or at d 96 (kernels built without it).
    let c = main(128, Mask::CausalTopLeft);
    assert_eq!(
        sm90_bwd_convert(&c, &problem(4, 16, 16, 4096, 128, Mask::CausalTopLeft), 32, 1, 132, true, None),
        (0, 0)
    );
    let c64 = main(64, Mask::CausalTopLeft);
    assert_eq!(
        sm90_bwd_convert(&c64, &problem(16, 32, 32, 1024, 64, Mask::CausalTopLeft), 8, 1, 132, true, None),
        (0, 0)
    );
    let d96 = main(96, Mask::None);
    assert_eq!(sm90_bwd_convert(&d96, &problem(16, 16, 16, 1024, 96, Mask::None), 8, 1, 132, true, None), (0, 0));
    let d64 = main(64, Mask::None);
    assert_eq!(sm90_bwd_convert(&d64, &problem(16, 32, 32, 1024, 64, Mask::None), 8, 1, 132, true, None), (18, 494));
    // Too few rows for the lag, split GQA groups, the deterministic and ping-pong kernels: none.
    assert_eq!(sm90_bwd_convert(&v, &problem(1, 4, 4, 1024, 128, Mask::None), 8, 1, 132, true, None), (0, 0));
    assert_eq!(sm90_bwd_convert(&v, &problem(2, 32, 8, 2048, 128, Mask::None), 16, 4, 132, true, None), (0, 0));
    assert_eq!(sm90_bwd_convert(&v.bwd_deterministic(), &p, 8, 1, 132, true, None), (0, 0));
    let pp = v.with_bwd_overlap(Sm90BwdOverlap { pingpong: true, ..pipe });
    assert_eq!(sm90_bwd_convert(&pp, &p, 8, 1, 132, true, None), (0, 0));
    assert_eq!(sm90_bwd_convert(&v.bwd_without_dq_smem(), &p, 8, 1, 132, true, None), (0, 0));
    // A forced lag (FLASHCORE_SM90_BWD_CONVERT_LAG, tests) replaces the wave.
    assert_eq!(sm90_bwd_convert(&v, &problem(2, 4, 4, 256, 128, Mask::None), 2, 1, 132, true, Some(1)), (1, 7));
}

#[test]
fn hopper_backward_zeroes_dq_in_the_kernel_a_wave_ahead_and_a_section_apart() {
    use flashcore::plan::backward::sm90_bwd_zero_lag;
    use flashcore::plan::Sm90BwdOverlap;
    let smem = Arch::SM90.max_smem_per_block();
    let problem = |b: usize, h: usize, hkv: usize, s: usize, mask: Mask| Problem {
        batch: b,
        ..bf16_problem(h, hkv, s, s, 128, mask)
    };
    let pipe = Sm90BwdOverlap { pingpong: false, pipe: true, det: false };
    let main =
        |mask: Mask| Variant::backward_sm90_with(128, DType::Bf16, mask, smem, true).unwrap().with_bwd_overlap(pipe);
    let (full, causal) = (main(Mask::None), main(Mask::CausalTopLeft));
    // D128 S1K B16 H16: 256 rows of 8 key blocks, a wave is 17 rows: lag 18, causal or not.
    let p = problem(16, 16, 16, 1024, Mask::None);
    assert_eq!(sm90_bwd_zero_lag(&full, &p, 8, 1, 132, true, None), 18);
    assert_eq!(sm90_bwd_zero_lag(&causal, &problem(16, 16, 16, 1024, Mask::CausalTopLeft), 8, 1, 132, true, None), 18);
    assert_eq!(sm90_bwd_zero_lag(&full, &p, 8, 1, 132, false, None), 0, "off: the prep kernel zeroes");
    // Split GQA groups count rows per split: GQA 32/8 B2 S2K split by 4 is 64 rows of 16 blocks.
    assert_eq!(sm90_bwd_zero_lag(&full, &problem(2, 32, 8, 2048, Mask::None), 16, 4, 132, true, None), 10);
    // Causal sections (16 key blocks or more, 16 MiB of query-side traffic): at S2K a row is 2 MiB,
    // so a section is 8 rows, and the lag is at least that even where the wave is shorter.
    let c2k = problem(8, 16, 16, 2048, Mask::CausalTopLeft);
    if std::env::var("FLASHCORE_SM90_BWD_SECTION_MIB").is_err() {
        assert_eq!(sm90_bwd_zero_lag(&causal, &c2k, 16, 1, 16, true, None), 8);
        assert_eq!(sm90_bwd_zero_lag(&causal, &c2k, 16, 1, 132, true, Some(1)), 8);
    }
    assert_eq!(sm90_bwd_zero_lag(&full, &problem(8, 16, 16, 2048, Mask::None), 16, 1, 16, true, Some(1)), 1);
    // Too few rows for the lag, and the kernels without the shared-memory dQ path: none.
    assert_eq!(sm90_bwd_zero_lag(&full, &problem(1, 4, 4, 1024, Mask::None), 8, 1, 132, true, None), 0);
    assert_eq!(sm90_bwd_zero_lag(&full.bwd_without_dq_smem(), &p, 8, 1, 132, true, None), 0);
    // The deterministic kernels zero in the kernel too (no sections there).
    assert_eq!(sm90_bwd_zero_lag(&causal.bwd_deterministic(), &c2k, 16, 1, 16, true, Some(1)), 1);
}
