//! Backward planning: the sm80 backward's tile table, its three kernels (prep, main, post) as
//! [`Variant`]s, and their grids. Pure CPU decisions, like the forward's tiles.rs and schedule.rs.

use super::arch::Arch;
use super::knobs::knobs;
use super::schedule::Launch;
use super::tiles::TileConfig;
use super::variant::{FwdExt, KernelKind, Variant};
use crate::api::args::{DType, Mask, Problem, Window};
use crate::error::{Error, Result};

/// Head dims the backward serves: multiples of 16 (the MMA's K step) from 16 to 128. A warp keeps
/// dK and dV of its 16 keys in registers, head-dim floats per thread; at 256 that alone is the
/// whole register file, so larger head dims are refused rather than spilled.
pub fn supported_bwd_head_dim(d: usize) -> bool {
    d % 16 == 0 && (16..=128).contains(&d)
}

/// Threads of the prep and post kernels (kernels/bwd/prep.cu `kPrepThreads`, post.cu `kPostThreads`).
pub const BWD_AUX_THREADS: usize = 128;
/// Query rows per prep CTA (kernels/bwd/prep.cu `kPrepRows`).
pub const BWD_PREP_ROWS: usize = 32;

/// Does the tile split dQ = dS K evenly over its warps (kernels/bwd/config.cuh `BwdTraits`)?
/// Warps = block_n / 16 must be a multiple of the query block's 16-row groups, and each warp's
/// head-dim slice whole n8 MMA tiles.
fn dq_split_ok(t: &TileConfig, head_dim: usize) -> bool {
    let (warps, groups) = (t.block_n() / 16, t.block_m() / 16);
    warps % groups == 0 && head_dim % (8 * (warps / groups)) == 0
}

/// kernels/sm80/bwd.cu `kSmemBytes`: K and V (block_n rows), two stages of Q and dO (block_m rows)
/// plus their fp32 LSE and D, and the 16-bit dSᵀ tile (block_n x block_m). Rows are padded to 64
/// elements for the swizzle (kernels/common/tile.cuh `SmemTile::kRowElems`).
pub fn bwd_smem_bytes(t: &TileConfig, head_dim: usize) -> usize {
    let row = |cols: usize| cols.div_ceil(64) * 64 * 2;
    2 * t.block_n() * row(head_dim)
        + t.stages() * (2 * t.block_m() * row(head_dim) + 2 * t.block_m() * 4)
        + t.block_n() * row(t.block_m())
}

/// The backward's tile: the first preference of the head dim that splits dQ evenly and fits the
/// device's shared memory. block_m = query rows per step, block_n = keys per CTA (16 per warp).
/// Register budget per thread: dK + dV take head-dim floats, Sᵀ and dPᵀ block_m floats; every
/// row compiles without spills for sm_80 and sm_90a (scripts/check_kernels.sh).
/// - 64x128 (8 warps, 145 KiB at d 128): FlashAttention-2's sm80 choice for d 64 and 128. Needs
///   d a multiple of 32 (two head-dim slices of dQ per 16-row group).
/// - 64x64 (4 warps, one dQ slice per warp: any d); 32x64 and 32x32 for 99 KiB parts (sm_86/89).
///
/// Not yet measured on a device: the order follows FlashAttention-2's sm80 table.
pub fn bwd_tile_config(head_dim: usize, max_smem: usize) -> Result<TileConfig> {
    if !supported_bwd_head_dim(head_dim) {
        return Err(Error::Unsupported(format!(
            "head dim {head_dim} in the backward: it supports multiples of 16 from 16 to 128 (dK and dV \
             accumulators of larger head dims do not fit the registers)"
        )));
    }
    let prefs: &[(usize, usize)] =
        if head_dim <= 64 { &[(64, 128), (64, 64), (32, 64), (32, 32)] } else { &[(32, 128), (32, 64), (32, 32)] };
    for &(m, n) in prefs {
        let t = TileConfig::new(m, n, 1, 2)?;
        if dq_split_ok(&t, head_dim) && bwd_smem_bytes(&t, head_dim) <= max_smem {
            return Ok(t);
        }
    }
    Err(Error::Unsupported(format!(
        "head dim {head_dim} in the backward: no tile fits the device's {max_smem} bytes of shared memory per block"
    )))
}

/// Head dims of the Hopper backward (kernels/sm90/bwd.cu): 64-value TMA boxes (d 96: the second
/// half-filled, TMA zero-fills the rest) and dK, dV (64 keys x head dim per consumer warpgroup)
/// within its 240 registers per thread. d 96 needs the shared-memory dQ path (its dQ is computed
/// transposed). Other head dims run the sm80 backward on Hopper too.
pub fn sm90_bwd_head_dim(d: usize) -> bool {
    d == 64 || d == 96 || d == 128
}

/// kernels/sm90/bwd_config.cuh `kSmemBytes`: K and V (block_n rows), two stages of Q and dO
/// (block_m rows) with their fp32 lse2 and dsum, two 16-bit dSᵀ buffers (block_n x block_m), and
/// [`SM90_BWD_SMEM_SLACK`] bytes for the 1024-byte alignment and the mbarriers; with `dq_smem`, the
/// fp32 dQ tile buffers ([`sm90_bwd_dq_buffers`]).
pub fn sm90_bwd_smem_bytes(t: &TileConfig, head_dim: usize, dq_smem: bool) -> usize {
    let (bm, bn) = (t.block_m(), t.block_n());
    let row = head_dim.div_ceil(64) * 64 * 2; // 16-bit tile rows: whole 64-value d blocks
    let base = 2 * bn * row + t.stages() * (2 * bm * row + 2 * bm * 4) + 2 * bn * bm * 2 + SM90_BWD_SMEM_SLACK;
    base + sm90_bwd_dq_buffers(t, head_dim, dq_smem) * bm * head_dim * 4
}

/// kernels/sm90/bwd_config.cuh `kSmemSlack`: up to 1023 bytes to align the tiles to 1024 and the
/// five mbarriers.
pub const SM90_BWD_SMEM_SLACK: usize = 1024 + 64;

/// kernels/sm90/bwd_config.cuh `kDqBufs`: fp32 dQ tiles (block_m x head dim) in shared memory when
/// the backward adds dQ with bulk reduces (`FLASHCORE_SM90_BWD_DQ_SMEM=1`): two where they fit in
/// 227 KiB (d 128: exactly), else one (d 64), none on the red.global path.
pub fn sm90_bwd_dq_buffers(t: &TileConfig, head_dim: usize, dq_smem: bool) -> usize {
    if !dq_smem {
        return 0;
    }
    let tile = t.block_m() * head_dim * 4;
    if sm90_bwd_smem_bytes(t, head_dim, false) + 2 * tile <= 227 * 1024 {
        2
    } else {
        1
    }
}

/// The Hopper backward's tile: block_n = 128 keys per CTA (two consumer warpgroups of 64 keys, as
/// FlashAttention-3), block_m = query rows per step. Per consumer thread dK and dV take head-dim
/// floats each, Sᵀ and dPᵀ block_m / 2 each; dQ = dS K is split so each warpgroup's wgmma has M = 64.
/// - d 128: 64x128 (FlashAttention-3's causal choice; dQ split by head-dim halves), 161 KiB
///   (227 KiB with `dq_smem`'s two 32 KiB dQ tiles).
/// - d 64: 128x128 (FlashAttention-3's choice; dQ split by query halves), 161 KiB (196 KiB with
///   `dq_smem`'s one dQ tile).
/// - d 128 without a causal mask, on the shared-memory dQ path: 80x128, FlashAttention-3's
///   non-causal choice (dQᵀ per warpgroup), 226 KiB with one 40 KiB dQ tile. On the H100, A B A B
///   (bench/NOTES.md, session 15): +1.3% at S1K, +2% at S2K, +3-4% at S4K and S16K; causal lost
///   2.5-5% (more of each step's rows straddle the diagonal), so causal keeps 64.
///   `FLASHCORE_SM90_BWD_TILE=64|80` forces either (80 only with dQ through shared memory).
/// - d 96 (shared-memory dQ only): as d 128, 80 rows without a causal mask and 64 with one, the
///   tiles padded to two 64-value d blocks and dQ computed transposed at both row counts.
pub fn sm90_bwd_tile_config(head_dim: usize, causal: bool, max_smem: usize, dq_smem: bool) -> Result<TileConfig> {
    let rows80 = dq_smem && knobs().sm90_bwd_block_m.map_or(!causal, |m| m == 80);
    let block_m = match head_dim {
        64 => 128,
        _ if rows80 => 80,
        _ => 64,
    };
    sm90_bwd_tile(head_dim, block_m, max_smem, dq_smem)
}

/// The Hopper backward's tile with `block_m` query rows per step, if the kernel serves it: 128 at
/// d 64; 64 or 80 at d 96 and 128, where 80 and all of d 96 need the shared-memory dQ path
/// (kernels/sm90/bwd_config.cuh `kDqT`); and within `max_smem`.
pub fn sm90_bwd_tile(head_dim: usize, block_m: usize, max_smem: usize, dq_smem: bool) -> Result<TileConfig> {
    match (head_dim, block_m) {
        (64, 128) | (128, 64) => {}
        (96, _) if !dq_smem => {
            return Err(Error::Unsupported(
                "head dim 96 in the Hopper backward needs dQ through shared memory (FLASHCORE_SM90_BWD_DQ_SMEM)".into(),
            ))
        }
        (96, 64) | (96 | 128, 80) if dq_smem => {}
        (64 | 96 | 128, _) => {
            return Err(Error::Unsupported(format!(
                "{block_m} query rows per step in the Hopper backward at head dim {head_dim}: it takes 128 at d 64, \
                 and 64, or 80 with dQ through shared memory, at d 96 and 128"
            )))
        }
        _ => {
            return Err(Error::Unsupported(format!(
                "head dim {head_dim} in the Hopper backward: it serves 64, 96 and 128"
            )))
        }
    }
    let t = TileConfig::new(block_m, 128, 1, 2)?;
    if sm90_bwd_smem_bytes(&t, head_dim, dq_smem) > max_smem {
        return Err(Error::Unsupported(format!(
            "the Hopper backward at head dim {head_dim} needs {} bytes of shared memory, the device allows {max_smem}",
            sm90_bwd_smem_bytes(&t, head_dim, dq_smem)
        )));
    }
    Ok(t)
}

/// Overlap schedules of the Hopper backward's main loop (kernels/sm90/bwd_consumer.cuh), knobs
/// that are off by default and not yet measured on a device (bench/NOTES.md, Hopper backward 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Sm90BwdOverlap {
    /// `FLASHCORE_SM90_BWD_PINGPONG=1`: the two consumer warpgroups take turns issuing their GEMM
    /// batches (named barriers, as the forward's ping-pong), so one's exp/dS work runs while the
    /// other's GEMMs use the tensor cores.
    pub pingpong: bool,
    /// Step i's dQ GEMM is issued with step i+1's Sᵀ and dPᵀ and its tile stored to shared memory
    /// while those run (needs the shared-memory dQ path); on unless `FLASHCORE_SM90_BWD_PIPE=0`.
    pub pipe: bool,
    /// The deterministic mode on the shared-memory dQ path (FC_SM90_BWD_DET): each step's bulk
    /// reduce waits for its turn in the query block; the plain loop, no pingpong or pipe.
    pub det: bool,
}

/// Which backward kernel a call runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BwdPath {
    /// The planner's choice: the Hopper kernel on sm_90a for head dims 64, 96 and 128 (unless
    /// `FLASHCORE_SM90_BWD=0`), the sm80 kernel elsewhere.
    #[default]
    Auto,
    /// The portable mma.sync kernel on every arch (tests and A/B runs).
    Sm80,
}

impl Variant {
    /// The backward's main kernel the planner picks: the Hopper kernel (kernels/sm90/bwd.cu) on
    /// sm_90a for head dims 64, 96 and 128 unless `FLASHCORE_SM90_BWD=0`, else the sm80 kernel.
    pub fn backward(arch: Arch, head_dim: usize, dtype: DType, mask: Mask, max_smem: usize) -> Result<Variant> {
        Variant::backward_on(BwdPath::Auto, arch, head_dim, dtype, mask, max_smem)
    }

    /// The backward's main kernel on a given path; `BwdPath::Auto` is [`Variant::backward`].
    pub fn backward_on(
        path: BwdPath,
        arch: Arch,
        head_dim: usize,
        dtype: DType,
        mask: Mask,
        max_smem: usize,
    ) -> Result<Variant> {
        let k = knobs();
        let sm90 = sm90_bwd_head_dim(head_dim) && (head_dim != 96 || k.sm90_bwd_dq_smem);
        if path == BwdPath::Auto && arch == Arch::SM90 && sm90 && !k.sm90_bwd_disabled {
            return Variant::backward_sm90(head_dim, dtype, mask, max_smem);
        }
        Variant::backward_sm80(arch, head_dim, dtype, mask, max_smem)
    }

    /// The Hopper backward (sm_90a) for head dims 64, 96 and 128, dQ by the process's choice
    /// (`FLASHCORE_SM90_BWD_DQ_SMEM`).
    pub fn backward_sm90(head_dim: usize, dtype: DType, mask: Mask, max_smem: usize) -> Result<Variant> {
        let k = knobs();
        let overlap = Sm90BwdOverlap { pingpong: k.sm90_bwd_pingpong, pipe: k.sm90_bwd_pipe, det: false };
        Ok(Variant::backward_sm90_with(head_dim, dtype, mask, max_smem, k.sm90_bwd_dq_smem)?.with_bwd_overlap(overlap))
    }

    /// The Hopper backward with dQ's path chosen explicitly: `dq_smem` adds each step's dQ tile
    /// from shared memory with one bulk reduce (kept in `Variant::tma_store`, which the forward
    /// uses for its O store), else red.global from registers.
    pub fn backward_sm90_with(
        head_dim: usize,
        dtype: DType,
        mask: Mask,
        max_smem: usize,
        dq_smem: bool,
    ) -> Result<Variant> {
        let tile = sm90_bwd_tile_config(head_dim, mask.is_causal(), max_smem, dq_smem)?;
        Ok(Variant {
            kind: KernelKind::BwdSm90,
            arch: Arch::SM90,
            head_dim,
            dtype,
            causal: mask.is_causal(),
            tile,
            tma_store: dq_smem,
            bwd_overlap: Sm90BwdOverlap::default(),
            ext: Default::default(),
        })
    }

    /// The same Hopper backward with a main-loop overlap schedule ([`Sm90BwdOverlap`]). `pipe`
    /// needs the shared-memory dQ path (its deferred dQ tile is stored to shared memory while the
    /// next step's GEMMs run) and is dropped without it; other kernels ignore both.
    /// The 80-row tile runs only in the pipelined loop (see [`Variant::bwd_rows_checked`]).
    pub fn with_bwd_overlap(self, o: Sm90BwdOverlap) -> Variant {
        if self.kind != KernelKind::BwdSm90 {
            return self;
        }
        Variant {
            bwd_overlap: Sm90BwdOverlap { pingpong: o.pingpong, pipe: o.pipe && self.tma_store, det: false },
            ..self
        }
        .bwd_rows_checked()
    }

    /// The Hopper backward's 80-row tile compiles clean only in the pipelined loop on the
    /// shared-memory dQ path without a softcap: the plain loop (`FLASHCORE_SM90_BWD_PIPE=0`, the
    /// deterministic mode) makes ptxas serialize its wgmmas for registers (C7512) and the softcap
    /// spills (NVRTC 13.0.88). Elsewhere it goes back to 64 rows.
    fn bwd_rows_checked(self) -> Variant {
        let ok = self.bwd_dq_smem() && self.bwd_overlap.pipe && !self.bwd_overlap.det && !self.ext.softcap;
        if ok {
            self
        } else {
            self.bwd_rows64()
        }
    }

    /// Does this Hopper backward (or its post kernel) add dQ through shared memory (swizzled
    /// accumulator rows, kernels/bwd/config.cuh `kDqSmem`)?
    pub fn bwd_dq_smem(&self) -> bool {
        matches!(self.kind, KernelKind::BwdSm90 | KernelKind::BwdPost) && self.tma_store
    }

    /// The deterministic mode's backward. On the shared-memory dQ path: the plain loop, whose
    /// issuing thread orders each step's bulk reduce by the query block's turn counter
    /// (kernels/sm90/bwd_consumer.cuh). With a sliding window, or a softcap at head dim 64, that
    /// loop spills a register (NVRTC 13.0), so those kernels, like the red.global path, add dQ by
    /// ordered red.global from registers instead.
    /// The 80-row tile goes back to 64 rows here: its plain loop makes ptxas serialize the wgmmas
    /// for registers (C7512, NVRTC 13.0.88).
    pub fn bwd_deterministic(&self) -> Variant {
        if !self.bwd_dq_smem() || self.ext.local || (self.head_dim <= 64 && self.ext.softcap) {
            return self.bwd_without_dq_smem();
        }
        Variant { bwd_overlap: Sm90BwdOverlap { pingpong: false, pipe: false, det: true }, ..self.bwd_rows64() }
    }

    /// The main kernel a backward call runs in the given mode: on the shared-memory dQ path the
    /// deterministic mode has its own variant ([`Variant::bwd_deterministic`]); elsewhere the same
    /// kernel takes the mode at run time (`BwdParams::deterministic`).
    pub fn bwd_for_mode(self, deterministic: bool) -> Variant {
        if deterministic && self.bwd_dq_smem() {
            self.bwd_deterministic()
        } else {
            self
        }
    }

    /// The same backward with dQ added by red.global from registers (and no overlap knobs). The
    /// 80-row tile needs the shared-memory path (its dQ is transposed), so it goes back to 64 rows.
    /// At d 96, which the Hopper kernel serves only with dQ through shared memory, that is the
    /// portable kernel.
    pub fn bwd_without_dq_smem(&self) -> Variant {
        if self.kind == KernelKind::BwdSm90 && self.head_dim == 96 {
            let tile = bwd_tile_config(96, self.arch.max_smem_per_block()).expect("d 96 has an sm80 backward tile");
            return Variant {
                kind: KernelKind::BwdSm80,
                tile,
                tma_store: false,
                bwd_overlap: Sm90BwdOverlap::default(),
                ..*self
            };
        }
        Variant { tma_store: false, bwd_overlap: Sm90BwdOverlap::default(), ..self.bwd_rows64() }
    }

    /// The Hopper backward's 80-row tile as the 64-row one; any other variant unchanged.
    fn bwd_rows64(&self) -> Variant {
        if self.kind == KernelKind::BwdSm90 && self.tile.block_m() == 80 {
            Variant { tile: TileConfig::new(64, self.tile.block_n(), 1, 2).expect("64x128 is a valid tile"), ..*self }
        } else {
            *self
        }
    }

    /// The same Hopper backward at head dim 96 or 128 with `block_m` query rows per step (64 or 80;
    /// 80 needs the shared-memory dQ path: kernels/sm90/bwd_config.cuh `kDqT`).
    pub fn with_bwd_block_m(self, block_m: usize, max_smem: usize) -> Result<Variant> {
        if self.kind != KernelKind::BwdSm90 || self.head_dim == 64 {
            return Err(Error::Unsupported(format!(
                "{block_m} query rows per step: only the Hopper backward at head dims 96 and 128 takes a choice"
            )));
        }
        let v = Variant { tile: sm90_bwd_tile(self.head_dim, block_m, max_smem, self.tma_store)?, ..self };
        if block_m == 80 && v.bwd_rows_checked() != v {
            return Err(Error::Unsupported(
                "80 query rows per step in the Hopper backward need its pipelined loop and no softcap".to_string(),
            ));
        }
        Ok(v)
    }

    /// The portable backward (kernels/sm80/bwd.cu; mma.sync, every arch >= sm_80).
    pub fn backward_sm80(arch: Arch, head_dim: usize, dtype: DType, mask: Mask, max_smem: usize) -> Result<Variant> {
        let tile = bwd_tile_config(head_dim, max_smem)?;
        Ok(Variant {
            kind: KernelKind::BwdSm80,
            arch,
            head_dim,
            dtype,
            causal: mask.is_causal(),
            tile,
            tma_store: false,
            bwd_overlap: Sm90BwdOverlap::default(),
            ext: Default::default(),
        })
    }

    /// The same backward main kernel for the forward's sliding window and logit softcap. The
    /// window's right edge is the upper bound the causal variant applies (FC_CAUSAL with the window's
    /// offset), its left edge the lower bound FC_LOCAL adds, as in the forward
    /// ([`Variant::forward_ext`]); a softcap adds FC_SOFTCAP (tanh on the recomputed scores, its
    /// derivative 1 − tanh² on dS). Without either: unchanged.
    pub fn with_bwd_ext(self, window: &Window, softcap: bool) -> Variant {
        if !matches!(self.kind, KernelKind::BwdSm80 | KernelKind::BwdSm90) || (window.is_none() && !softcap) {
            return self;
        }
        // A window's right edge is a causal bound: 64 query rows, as the planner takes for causal
        // masks (sm90_bwd_tile_config).
        let base = if window.right.is_some() && !self.causal { self.bwd_rows64() } else { self };
        Variant {
            causal: self.causal || window.right.is_some(),
            ext: FwdExt { local: window.left.is_some(), softcap, ..FwdExt::default() },
            ..base
        }
        .bwd_rows_checked()
    }

    /// The prep (`BwdPrep`) or post (`BwdPost`) kernel that goes with a backward main kernel: same head
    /// dim, dtype and tile (its block_m pads the scratch rows); the mask does not matter to them, so
    /// causal and full calls share one compiled kernel.
    /// Only the post kernel keeps the dQ path (it reads the accumulator's layout).
    pub fn bwd_aux(&self, kind: KernelKind) -> Variant {
        debug_assert!(matches!(kind, KernelKind::BwdPrep | KernelKind::BwdPost));
        Variant {
            kind,
            causal: false,
            tma_store: self.bwd_dq_smem() && kind == KernelKind::BwdPost,
            bwd_overlap: Sm90BwdOverlap::default(),
            ext: FwdExt::default(),
            ..*self
        }
    }

    /// The backward kernels `warmup` and the CI compile check build for one arch: every head dim,
    /// dtype and mask, with the tile chosen for the arch's shared memory and the one chosen for a
    /// 99 KiB part (sm_86/89), plus on sm_90a the Hopper backward (enabled or not) with both dQ
    /// paths and, on the shared-memory one, each overlap knob (`FLASHCORE_SM90_BWD_PINGPONG`,
    /// `FLASHCORE_SM90_BWD_PIPE`, both), so every tile and knob setting the planner can pick is
    /// compile-checked. Sliding windows and softcaps add, for head dims 64, 96 and 128 and both dtypes,
    /// the planner's main kernel with a left edge (FC_LOCAL) under a right edge (FC_CAUSAL) or none,
    /// and with a softcap (FC_SOFTCAP), on both paths.
    pub fn backward_set(arch: Arch) -> Vec<Variant> {
        let mut out = Vec::new();
        for d in (16..=128).filter(|d| supported_bwd_head_dim(*d)) {
            for dtype in [DType::F16, DType::Bf16] {
                for mask in [Mask::None, Mask::CausalTopLeft] {
                    let overlaps = [(false, false), (true, false), (false, true), (true, true)]
                        .map(|(pingpong, pipe)| Sm90BwdOverlap { pingpong, pipe, det: false });
                    // `pipe` without the shared-memory dQ path falls back to the plain loop
                    // (`with_bwd_overlap`); the duplicates are dropped below.
                    let sm90 = [false, true]
                        .into_iter()
                        .flat_map(|dq_smem| overlaps.map(|o| (dq_smem, o)))
                        .filter(|_| arch == Arch::SM90 && sm90_bwd_head_dim(d))
                        .map(|(dq_smem, o)| {
                            Ok(Variant::backward_sm90_with(d, dtype, mask, arch.max_smem_per_block(), dq_smem)?
                                .with_bwd_overlap(o))
                        });
                    // Both row counts at d 96 / 128 (`FLASHCORE_SM90_BWD_TILE=64|80`: the one the
                    // planner does not take for this mask), with the default overlap.
                    let rows = [64, 80].map(|m| {
                        (arch == Arch::SM90 && (d == 96 || d == 128)).then(|| {
                            Variant::backward_sm90_with(d, dtype, mask, arch.max_smem_per_block(), true)?
                                .with_bwd_overlap(Sm90BwdOverlap { pingpong: false, pipe: true, det: false })
                                .with_bwd_block_m(m, arch.max_smem_per_block())
                        })
                    });
                    let rows = rows.into_iter().flatten();
                    let sm80 = [arch.max_smem_per_block(), 99 * 1024]
                        .map(|smem| Variant::backward_sm80(arch, d, dtype, mask, smem));
                    for main in sm80.into_iter().chain(sm90).chain(rows) {
                        let Ok(main) = main else { continue };
                        for v in [
                            main,
                            main.bwd_deterministic(),
                            main.bwd_aux(KernelKind::BwdPrep),
                            main.bwd_aux(KernelKind::BwdPost),
                        ] {
                            if !out.contains(&v) {
                                out.push(v);
                            }
                        }
                    }
                }
                if sm90_bwd_head_dim(d) {
                    let smem = arch.max_smem_per_block();
                    let left = Window { left: Some(1), right: None };
                    let paths = [BwdPath::Sm80, BwdPath::Auto];
                    for (path, mask) in paths.into_iter().flat_map(|p| [(p, Mask::None), (p, Mask::CausalTopLeft)]) {
                        let Ok(main) = Variant::backward_on(path, arch, d, dtype, mask, smem) else { continue };
                        // And at 64 rows where the planner takes 80 (`FLASHCORE_SM90_BWD_TILE=64`).
                        let rows64 = main.with_bwd_block_m(64, smem).ok().filter(|m| *m != main);
                        for main in [Some(main), rows64].into_iter().flatten() {
                            // The deterministic mode's main kernel too (Runtime::backward).
                            for v in [main.with_bwd_ext(&left, false), main.with_bwd_ext(&Window::default(), true)] {
                                for m in [v, v.bwd_deterministic()] {
                                    if !out.contains(&m) {
                                        out.push(m);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// The three launches of one backward call, and the sizes the host needs for the scratch buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BwdLaunches {
    pub prep: Launch,
    pub main: Launch,
    pub post: Launch,
    pub num_m_blocks: u32,
    pub num_n_blocks: u32,
    /// Query rows per (batch, head) in the fp32 scratch: Sq rounded up to whole query blocks.
    pub seqlen_q_pad: usize,
    /// CTAs per (key block, kv head, batch) of the Hopper backward, each over group / kv_splits
    /// query heads (1: the whole group in one CTA, dK and dV stored directly).
    pub kv_splits: usize,
    /// Key rows per (batch, kv head) of the split partials: Sk rounded up to whole key blocks.
    pub seqlen_k_pad: usize,
    /// dQ converted in the Hopper main kernel ([`sm90_bwd_convert`]): the lag in grid rows and the
    /// first grid row left to the post kernel; 0 and 0 where the post kernel converts every row.
    pub convert_lag: usize,
    pub convert_rows: usize,
    /// dQ accumulator zeroed in the Hopper main kernel ([`sm90_bwd_zero_lag`]): the lag in grid
    /// rows, the prep kernel zeroing the rows before it; 0 where the prep kernel zeroes every row.
    pub zero_lag: usize,
}

/// The Hopper backward's in-kernel dQ conversion (kernels/sm90/bwd_convert.cuh): the CTAs of grid
/// row r (kv head x split, batch; `num_n_blocks` CTAs each) convert row r - lag's dQ once that
/// row's CTAs are done, and the post kernel converts the last `lag` rows. Returns (lag, first row
/// left to the post kernel), or (0, 0) for the post kernel alone: in the kernels built without the
/// converter (shared-memory dQ only, whose issuing thread counts the row done; head dims 64 and
/// 128; no causal mask, where it measured 3-8% slower: a causal row ends with its longest CTA, so
/// the converting CTAs waited; no softcap; not the ping-pong knob's), in the deterministic modes,
/// with split GQA groups (the post kernel sums their dK / dV partials anyway), or when the lag
/// leaves no row to convert. (Two converters through shared memory, at each CTA's end or from a
/// ring of bulk-copied staging buffers, causal kernels too, lost 8-14% and 0-1.5% on the H200:
/// bench/NOTES.md session 24; removed.)
/// The lag is a wave of rows and one more (`sm_count` CTAs are resident at once), so the row a CTA
/// converts has usually finished when it starts. Any lag >= 1 is safe: rows launch in order (no
/// causal sections here), so the converted row was launched whole before the converting one and
/// the wait cannot deadlock. `on`: `FLASHCORE_SM90_BWD_CONVERT=0|1` (default on);
/// `forced_lag`: `FLASHCORE_SM90_BWD_CONVERT_LAG=n` (tests).
pub fn sm90_bwd_convert(
    main: &Variant,
    p: &Problem,
    num_n_blocks: usize,
    kv_splits: usize,
    sm_count: u32,
    on: bool,
    forced_lag: Option<usize>,
) -> (usize, usize) {
    // kernels/sm90/bwd_config.cuh `Sm90Bwd::kConvert`: the kernels built with the converter.
    let built = sm90_bwd_may_convert(main) && !main.causal;
    if !on || !built || main.bwd_overlap.det || kv_splits != 1 {
        return (0, 0);
    }
    match sm90_bwd_row_lag(main, p, num_n_blocks, kv_splits, sm_count, forced_lag) {
        Some(lag) => (lag, p.batch * p.kv_heads - lag),
        None => (0, 0),
    }
}

/// Whether a Hopper backward kernel can carry the in-kernel dQ converter (kernels/sm90/
/// bwd_config.cuh `kConvert`, which also needs no causal mask): the shared-memory dQ path (its
/// issuing thread counts the row done), head dim 64 or 128, no softcap, not the ping-pong knob's.
fn sm90_bwd_may_convert(main: &Variant) -> bool {
    main.kind == KernelKind::BwdSm90
        && main.bwd_dq_smem()
        && !main.bwd_overlap.pingpong
        && !main.ext.softcap
        && main.head_dim != 96
}

/// The Hopper backward's in-kernel zeroing of the fp32 dQ accumulator (kernels/sm90/bwd_zero.cuh):
/// the CTAs of grid row r (kv head x split, batch; `num_n_blocks` CTAs each) zero row r + lag's
/// accumulator at their start, and the prep kernel zeroes the first `lag` rows. Returns the lag, or
/// 0 for the prep kernel alone: in the kernels without the shared-memory dQ path (whose issuing
/// thread waits for the zeros), or when the lag leaves no row to the main kernel.
/// The lag is a wave of rows and one more, so the zeros are written long before they are needed.
/// Rows launch in order, so any lag >= 1 is safe, except in causal sections
/// (kernels/sm90/bwd_config.cuh `Work::sectioned`: a section's rows launch interleaved), where the
/// lag is raised to a section's rows so the zeroing row's section launches first.
/// `on`: `FLASHCORE_SM90_BWD_ZERO=0|1` (default on); `forced_lag`: `FLASHCORE_SM90_BWD_ZERO_LAG=n`.
pub fn sm90_bwd_zero_lag(
    main: &Variant,
    p: &Problem,
    num_n_blocks: usize,
    kv_splits: usize,
    sm_count: u32,
    on: bool,
    forced_lag: Option<usize>,
) -> usize {
    if !on || main.kind != KernelKind::BwdSm90 || !main.bwd_dq_smem() {
        return 0;
    }
    sm90_bwd_row_lag(main, p, num_n_blocks, kv_splits, sm_count, forced_lag).unwrap_or(0)
}

/// The lag in grid rows (kv head x split, batch) between a Hopper backward CTA's row and the row
/// whose dQ it converts or whose accumulator it zeroes: a wave of rows and one more (`sm_count`
/// CTAs of `num_n_blocks` per row are resident at once), or `forced`, raised to a causal section's
/// rows (a section's rows launch interleaved; the other row must be in an earlier section). None
/// when it leaves no row to the main kernel.
fn sm90_bwd_row_lag(
    main: &Variant,
    p: &Problem,
    num_n_blocks: usize,
    kv_splits: usize,
    sm_count: u32,
    forced: Option<usize>,
) -> Option<usize> {
    let rows = p.batch * p.kv_heads * kv_splits;
    let mut lag = forced.unwrap_or((sm_count as usize).div_ceil(num_n_blocks.max(1)) + 1);
    if let Some(section) = sm90_bwd_section_rows(main, p, num_n_blocks, kv_splits) {
        lag = lag.max(section);
    }
    (lag < rows && rows <= i32::MAX as usize).then_some(lag)
}

/// The grid rows of one causal section of the Hopper backward (kernels/sm90/bwd_config.cuh
/// `Work::sectioned`: causal, head dim >= 96, not deterministic, 16 key blocks or more; a section is
/// the rows whose query-side traffic, 8 bytes per element, fits the L2 budget), or None where the
/// CTAs launch in plain order. Within a section the rows' CTAs launch interleaved.
pub fn sm90_bwd_section_rows(main: &Variant, p: &Problem, num_n_blocks: usize, kv_splits: usize) -> Option<usize> {
    let mib = knobs().sm90_bwd_section_mib.unwrap_or(16) as usize;
    if main.kind != KernelKind::BwdSm90
        || !main.causal
        || main.head_dim < 96
        || main.bwd_overlap.det
        || num_n_blocks < 16
        || mib == 0
    {
        return None;
    }
    let rows = p.batch * p.kv_heads * kv_splits;
    let group = p.heads / p.kv_heads.max(1) / kv_splits.max(1);
    let row_bytes = 8 * group * p.seqlen_q.div_ceil(main.tile.block_m()) * main.tile.block_m() * main.head_dim;
    Some(rows.min(((mib << 20) / row_bytes.max(1)).max(1)))
}

/// CTAs of the Hopper backward under which a GQA/MQA group is split over several CTAs: 8 per SM.
/// One CTA per SM is resident (161 KiB of shared memory), so below this the tail of the last wave
/// and the causal triangle's unequal CTAs leave SMs idle; above it the partial dK/dV traffic
/// (fp32, written once per split, summed by the post kernel) buys little.
const SPLIT_TARGET_CTAS_PER_SM: usize = 8;

/// How many CTAs share one (key block, kv head, batch) of the Hopper backward: the smallest
/// divisor of the group that brings the grid to `SPLIT_TARGET_CTAS_PER_SM` per SM, else the whole
/// group (one query head per CTA, as MHA). `forced` (`FLASHCORE_SM90_BWD_SPLIT=n`) takes the
/// largest divisor of the group not above n. Each split adds fp32 partials of dK and dV, summed in
/// split order by the post kernel, so the deterministic mode stays bitwise reproducible.
pub fn sm90_bwd_kv_splits(p: &Problem, num_n_blocks: usize, sm_count: u32, forced: Option<usize>) -> usize {
    let group = p.heads / p.kv_heads.max(1);
    let divisors = (1..=group.max(1)).filter(|s| group % s == 0);
    if let Some(n) = forced {
        return divisors.filter(|s| *s <= n.max(1)).max().unwrap_or(1);
    }
    let base = num_n_blocks * p.kv_heads * p.batch;
    let target = SPLIT_TARGET_CTAS_PER_SM * sm_count.max(1) as usize;
    divisors.into_iter().find(|s| base * s >= target).unwrap_or(group.max(1))
}

/// Grids of the backward: prep over (64-row blocks, heads, batch); main over (key blocks, kv heads
/// x kv_splits, batch), key block fastest, so the CTAs one deterministic CTA waits for were launched
/// before it; post over (128 chunks of 8 values, heads, batch), rows of dQ and, when split, of dK/dV.
pub fn backward_launches(main: &Variant, p: &Problem, sm_count: u32) -> BwdLaunches {
    let (bm, bn) = (main.tile.block_m(), main.tile.block_n());
    let num_m_blocks = p.seqlen_q.div_ceil(bm);
    let num_n_blocks = p.seqlen_k.div_ceil(bn);
    let seqlen_q_pad = num_m_blocks * bm;
    let kv_splits = if main.kind == KernelKind::BwdSm90 {
        sm90_bwd_kv_splits(p, num_n_blocks, sm_count, knobs().sm90_bwd_split)
    } else {
        1
    };
    let aux = |x: usize| Launch {
        grid: (x as u32, p.heads as u32, p.batch as u32),
        block: (BWD_AUX_THREADS as u32, 1, 1),
        smem_bytes: 0,
        num_m_blocks: num_m_blocks as u32,
    };
    let post_rows = if kv_splits > 1 { p.seqlen_q.max(p.seqlen_k) } else { p.seqlen_q };
    let (convert_lag, convert_rows) = sm90_bwd_convert(
        main,
        p,
        num_n_blocks,
        kv_splits,
        sm_count,
        knobs().sm90_bwd_convert,
        knobs().sm90_bwd_convert_lag,
    );
    let zero_lag =
        sm90_bwd_zero_lag(main, p, num_n_blocks, kv_splits, sm_count, knobs().sm90_bwd_zero, knobs().sm90_bwd_zero_lag);
    let mut post = aux((post_rows * (p.head_dim / 8)).div_ceil(BWD_AUX_THREADS));
    if convert_rows > 0 {
        // The batches of the rows left to it (kernels/bwd/post.cu skips the heads converted already).
        post.grid.2 = (p.batch - convert_rows / p.kv_heads) as u32;
    }
    BwdLaunches {
        prep: aux(seqlen_q_pad.div_ceil(BWD_PREP_ROWS)),
        main: Launch {
            grid: (num_n_blocks as u32, (p.kv_heads * kv_splits) as u32, p.batch as u32),
            block: (main.threads() as u32, 1, 1),
            smem_bytes: main.smem_bytes() as u32,
            num_m_blocks: num_m_blocks as u32,
        },
        post,
        num_m_blocks: num_m_blocks as u32,
        num_n_blocks: num_n_blocks as u32,
        seqlen_q_pad,
        kv_splits,
        seqlen_k_pad: num_n_blocks * bn,
        convert_lag,
        convert_rows,
        zero_lag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(batch: usize, heads: usize, kv_heads: usize, seqlen: usize) -> Problem {
        Problem {
            batch,
            heads,
            kv_heads,
            seqlen_q: seqlen,
            seqlen_k: seqlen,
            head_dim: 128,
            dtype: DType::Bf16,
            mask: Mask::None,
            scale: 1.0,
            window: Default::default(),
            softcap: None,
        }
    }

    #[test]
    fn gqa_groups_split_only_when_the_grid_is_small() {
        // MHA never splits; MQA 16/1 B2 S1K (16 CTAs) splits into one head per CTA.
        assert_eq!(sm90_bwd_kv_splits(&problem(16, 16, 16, 1024), 8, 132, None), 1);
        assert_eq!(sm90_bwd_kv_splits(&problem(2, 16, 1, 1024), 8, 132, None), 16);
        // GQA 32/8 B2 S2K: 256 CTAs, split by 4 (the group) toward 8 per SM.
        assert_eq!(sm90_bwd_kv_splits(&problem(2, 32, 8, 2048), 16, 132, None), 4);
        // A grid already at 8 CTAs per SM stays whole; at 1024 the smallest divisor that reaches it.
        assert_eq!(sm90_bwd_kv_splits(&problem(8, 32, 8, 4096), 32, 132, None), 1);
        assert_eq!(sm90_bwd_kv_splits(&problem(2, 32, 8, 8192), 64, 132, None), 2);
        // The knob: the largest divisor of the group not above n.
        assert_eq!(sm90_bwd_kv_splits(&problem(2, 16, 1, 1024), 8, 132, Some(1)), 1);
        assert_eq!(sm90_bwd_kv_splits(&problem(2, 24, 2, 1024), 8, 132, Some(5)), 4);
    }

    #[test]
    fn split_launches_cover_kv_rows_in_the_post_grid() {
        let p = problem(2, 16, 1, 1000);
        let v = Variant::backward_sm90(128, DType::Bf16, Mask::None, 227 * 1024).unwrap();
        let l = backward_launches(&v, &p, 132);
        if knobs().sm90_bwd_split.is_none() {
            assert_eq!(l.kv_splits, 16);
        }
        assert_eq!(l.main.grid, (8, l.kv_splits as u32, 2));
        assert_eq!(l.seqlen_k_pad, 1024);
        assert_eq!(l.post.grid.0 as usize, (1000 * 16usize).div_ceil(BWD_AUX_THREADS));
        let sm80 = Variant::backward_sm80(Arch::SM90, 128, DType::Bf16, Mask::None, 227 * 1024).unwrap();
        assert_eq!(backward_launches(&sm80, &p, 132).kv_splits, 1);
    }
}
