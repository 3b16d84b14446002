//! Every compile-time axis of a kernel, rendered in one place: -D flags, entry name, cache key, display name.

use super::arch::Arch;
use super::backward::Sm90BwdOverlap;
use super::knobs::knobs;
use super::tiles::{
    sm90_head_dim, sm90_smem_bytes, supported_head_dim, tile_config, tile_config_sm90, tile_config_sm90_for,
    TileConfig, LONG_ROWS,
};
use crate::api::args::{DType, Mask, Problem};

/// Threads per CTA of the combine kernel (kernels/attn/combine.cu: 8 warps, one row each).
pub const COMBINE_THREADS: usize = 256;
use crate::error::{Error, Result};

/// Threads per CTA of the FP8 V transpose (kernels/sm90/fp8_vt.cu kVtThreads).
pub const FP8_VT_THREADS: usize = 256;

/// Keys from which the 16-bit Hopper forward at head dims 96 / 128 runs in clusters of two
/// ([`Variant::cluster_fits`]); d256 always does.
pub const CLUSTER_MIN_KEYS: usize = 32 * 1024;

/// The FP8 forward transposes V in the kernel up to this many query rows per KV head (x GQA group,
/// halved under a causal mask), and in the fp8_vt.cu pass beyond ([`Variant::with_vt_smem`]).
pub const VT_SMEM_MAX_ROWS: usize = 2048;

/// Which kernel source a variant compiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelKind {
    /// kernels/sm80/fwd.cu: mma.sync forward for every sm >= 80.
    FwdSm80,
    /// kernels/sm90/fwd.cu: TMA + wgmma + warp specialisation, sm_90a only.
    FwdSm90,
    /// kernels/bwd/prep.cu: rowsum(dO ∘ O), LSE in log2, zeroed dQ accumulator (plan/backward.rs).
    BwdPrep,
    /// kernels/sm80/bwd.cu: mma.sync backward (dK, dV, fp32 dQ) for every sm >= 80.
    BwdSm80,
    /// kernels/bwd/post.cu: fp32 dQ accumulator -> scaled dQ in q's dtype.
    BwdPost,
    /// kernels/sm90/bwd.cu: TMA + wgmma + warp specialisation backward (dK, dV, fp32 dQ), sm_90a only.
    BwdSm90,
    /// kernels/attn/combine.cu: split-KV partials -> output (or, `ext.merge`, two outputs merged).
    Combine,
    /// kernels/sm90/fwd.cu with FC_FP8: e4m3 q, k, v (`dtype` is the output's), sm_90a only.
    FwdSm90Fp8,
    /// kernels/sm90/fp8_vt.cu: the FP8 forward's transposed V.
    Fp8Vt,
}

impl KernelKind {
    pub fn entry_file(self) -> &'static str {
        match self {
            KernelKind::FwdSm80 => "sm80/fwd.cu",
            KernelKind::FwdSm90 => "sm90/fwd.cu",
            KernelKind::BwdPrep => "bwd/prep.cu",
            KernelKind::BwdSm80 => "sm80/bwd.cu",
            KernelKind::BwdPost => "bwd/post.cu",
            KernelKind::BwdSm90 => "sm90/bwd.cu",
            KernelKind::Combine => "attn/combine.cu",
            KernelKind::FwdSm90Fp8 => "sm90/fwd.cu",
            KernelKind::Fp8Vt => "sm90/fp8_vt.cu",
        }
    }
    pub fn entry_symbol(self) -> &'static str {
        match self {
            KernelKind::FwdSm80 => "fc_fwd_sm80",
            KernelKind::FwdSm90 => "fc_fwd_sm90",
            KernelKind::BwdPrep => "fc_bwd_prep",
            KernelKind::BwdSm80 => "fc_bwd_sm80",
            KernelKind::BwdPost => "fc_bwd_post",
            KernelKind::BwdSm90 => "fc_bwd_sm90",
            KernelKind::Combine => "fc_combine",
            KernelKind::FwdSm90Fp8 => "fc_fwd_sm90",
            KernelKind::Fp8Vt => "fc_fp8_vt",
        }
    }
}

/// One compiled kernel: source + every define + the target arch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    pub kind: KernelKind,
    pub arch: Arch,
    pub head_dim: usize,
    pub dtype: DType,
    pub causal: bool,
    pub tile: TileConfig,
    /// Hopper kernel only: stage O in shared memory and write it with TMA stores (opt-in with
    /// the default up to head dim 128; `FLASHCORE_SM90_TMA_STORE=0` turns it off).
    /// Hopper backward and its post kernel: dQ through shared memory and a bulk reduce-add
    /// (`FLASHCORE_SM90_BWD_DQ_SMEM=1`, [`Variant::bwd_dq_smem`]).
    pub tma_store: bool,
    /// Hopper backward only: the main loop's overlap knobs (default off).
    pub bwd_overlap: Sm90BwdOverlap,
    /// Forward only: the inference paths' compile-time features (issue 8).
    pub ext: FwdExt,
}

/// Compile-time features of a forward variant beyond the dense causal/full kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FwdExt {
    /// FC_LOCAL: the sliding window's lower bound (j >= i + window_offset_left).
    pub local: bool,
    /// FC_SOFTCAP: tanh logit cap.
    pub softcap: bool,
    /// FC_INFER: varlen / seqused_k / paged K/V / split-KV params may be set.
    pub infer: bool,
    /// Combine kernel only (FC_COMBINE_MERGE): merge two 16-bit outputs instead of split partials.
    pub merge: bool,
    /// Hopper 16-bit forward only (FC_SM90_CLUSTER=2): clusters of two CTAs on adjacent query
    /// blocks of one head share each K/V block through TMA multicast ([`Variant::with_cluster`]).
    pub cluster: bool,
    /// Hopper forward without an LSE output (FC_SM90_SUM_MMA): the softmax's row sums come from
    /// P·V run 8 columns wider over ones ([`Variant::with_sum_mma`]).
    pub sum_mma: bool,
    /// FP8 forward only (FC_SM90_VT_SMEM): V transposed in shared memory by the kernel instead of
    /// the fp8_vt.cu pass before it ([`Variant::with_vt_smem`]).
    pub vt_smem: bool,
}

/// The Hopper kernel serves sm_90a unless `FLASHCORE_SM90=0` (or `FLASHCORE_FORCE_SM80=1`) asks for
/// the portable kernel. It passed `flashcore validate --full` (59 rows) on an H100 on 2026-11-26.
fn sm90_enabled() -> bool {
    !knobs().sm90_disabled
}

impl Variant {
    /// The forward kernel the planner picks: the Hopper kernel where it applies and is enabled,
    /// else the portable one.
    pub fn forward(
        arch: Arch,
        head_dim: usize,
        dtype: DType,
        mask: Mask,
        seqlen_k: usize,
        max_smem: usize,
    ) -> Result<Variant> {
        if arch == Arch::SM90 && sm90_head_dim(head_dim) && sm90_enabled() {
            return Variant::sm90_for(head_dim, dtype, mask, seqlen_k, max_smem);
        }
        Variant::sm80(arch, head_dim, dtype, mask, seqlen_k, max_smem)
    }

    /// [`Variant::forward`] for a whole problem: on Hopper the tile may also depend on the GQA
    /// group and the query length ([`tile_config_sm90_for`]).
    pub fn forward_for(arch: Arch, p: &Problem, max_smem: usize) -> Result<Variant> {
        let v = Variant::forward_ext(arch, p, false, max_smem)?;
        // Measured on the H100 (bench/NOTES.md, session 9): d256 S4K +4% (with its rotated key
        // loop), causal +3%; d128 +2-3% from 32K keys (128K causal too); level at 4K-16K, and
        // -3% at S1K, -10% S1K causal, where a pair waiting for its slower CTA costs more.
        let pays = v.head_dim == 256 || p.seqlen_k >= CLUSTER_MIN_KEYS;
        let on = knobs().sm90_cluster.unwrap_or(pays);
        Ok(if on && v.cluster_fits(p) { v.with_cluster() } else { v })
    }

    /// Whether this dense forward variant can run `p` in clusters of two CTAs
    /// (kernels/sm90/config.cuh kCluster): the Hopper 16-bit kernel without a window, softcap or
    /// inference features (the variants `standard_set` compiles), whole tiles of one head (no GQA
    /// packing) and an even number of query blocks per head, so each cluster's two tiles stream
    /// the same key blocks (a causal pair its longer tile's); head dims of two or four d blocks
    /// (96, 128, 256), since each CTA loads every other d block of K and V.
    pub fn cluster_fits(&self, p: &Problem) -> bool {
        self.kind == KernelKind::FwdSm90
            && !self.ext.local
            && !self.ext.infer
            && !self.ext.softcap
            && p.window == Default::default()
            && matches!(self.head_dim, 96 | 128 | 256)
            && super::schedule::rows_per_head(self, p) == self.tile.block_m()
            && p.seqlen_q.div_ceil(self.tile.block_m()) % 2 == 0
    }

    /// This variant in clusters of two (see [`Variant::cluster_fits`]).
    pub fn with_cluster(self) -> Variant {
        Variant { ext: FwdExt { cluster: true, ..self.ext }, ..self }
    }

    /// For a call that wants no LSE: where it applies, the build whose softmax takes its row sums
    /// from the tensor cores (kernels/sm90/config.cuh kSumMma: P·V 8 columns wider over ones)
    /// instead of one FADD per score. Those sums are of P as P·V reads it, so O is normalised by
    /// exactly the weights it averages with, but the LSE would carry P's rounding (bf16: ~1e-3,
    /// beyond the LSE bar): calls that want the LSE keep the FADD sums. Dense 16-bit d64, where the
    /// softmax's instructions rather than the tensor cores limit the kernel: +1-4% on the H100
    /// (bench/NOTES.md, session 10). FP8 d64 / d128 gained 2-4.5% too but fails the naive FP8 bar
    /// on the outlier inputs (maximum errors 3-6x the bar: e4m3's P and FP8 wgmma's short
    /// accumulator, DeepSeek-V3's ~14 bits, bias an all-positive sum), so only
    /// `FLASHCORE_SM90_SUM_MMA=1` builds it there; `=0` turns it off everywhere.
    pub fn with_sum_mma(self, lse_wanted: bool) -> Variant {
        let forced = knobs().sm90_sum_mma;
        let fits = match self.kind {
            KernelKind::FwdSm90Fp8 => self.head_dim <= 128 && self.tile.block_n() == 128 && forced == Some(true),
            KernelKind::FwdSm90 => self.head_dim == 64 && !self.ext.infer,
            _ => false,
        };
        if fits && !lse_wanted && forced != Some(false) {
            Variant { ext: FwdExt { sum_mma: true, ..self.ext }, ..self }
        } else {
            self
        }
    }

    /// [`Variant::forward_for`] with the window / softcap features the problem needs and, with
    /// `infer`, the inference paths (varlen, seqused_k, paged, split-KV).
    pub fn forward_ext(arch: Arch, p: &Problem, infer: bool, max_smem: usize) -> Result<Variant> {
        let ext = FwdExt {
            local: p.window.left.is_some(),
            softcap: p.softcap.is_some(),
            infer,
            merge: false,
            cluster: false,
            sum_mma: false,
            vt_smem: false,
        };
        // A window's right edge without a causal mask is still an upper bound: the causal variant.
        let upper = p.mask.is_causal() || p.window.right.is_some();
        let with = |v: Variant| Variant { causal: upper, ext, ..v };
        if arch == Arch::SM90 && sm90_head_dim(p.head_dim) && sm90_enabled() {
            let mut tile = tile_config_sm90_for(p, max_smem)?;
            if ext != FwdExt::default() && (tile.block_m() == 192 || tile.min_blocks_per_sm() > 1) {
                // Three consumers at 160 registers have no room for the per-tile window and
                // sequence state (they spill); two at 232 do. A CTA of several per SM has too few
                // for the inference producer's 40 (kernels/sm90/config.cuh kConsumerRegs).
                tile =
                    TileConfig::new(128, if tile.block_m() == 192 { tile.block_n() } else { 128 }, 1, tile.stages())?;
            }
            let tma_store = knobs().sm90_tma_store && p.head_dim <= 128 && !infer;
            return Variant::sm90_tile(p.head_dim, p.dtype, p.mask, tile, max_smem, tma_store).map(with);
        }
        // The portable kernel serves every FwdExt feature too (kernels/sm80/fwd.cu reads the same
        // FwdParams; runtime/ext.rs sizes its split grid).
        Variant::sm80(arch, p.head_dim, p.dtype, p.mask, p.seqlen_k, max_smem).map(with)
    }

    /// The combine kernel of split-KV partials (or, `merge`, of two 16-bit outputs).
    pub fn combine(arch: Arch, head_dim: usize, dtype: DType, merge: bool) -> Result<Variant> {
        if head_dim == 0 || head_dim > 256 {
            return Err(Error::Unsupported(format!("combine: head dim {head_dim} outside 1..=256")));
        }
        Ok(Variant {
            kind: KernelKind::Combine,
            arch,
            head_dim,
            dtype,
            causal: false,
            // Unused by the kernel; config.cuh wants a tile.
            tile: TileConfig::new(64, 64, 1, 2)?,
            tma_store: false,
            bwd_overlap: Sm90BwdOverlap::default(),
            ext: FwdExt { merge, ..FwdExt::default() },
        })
    }

    /// The portable mma.sync kernel, for any arch >= sm_80.
    pub fn sm80(
        arch: Arch,
        head_dim: usize,
        dtype: DType,
        mask: Mask,
        seqlen_k: usize,
        max_smem: usize,
    ) -> Result<Variant> {
        let tile = tile_config(arch, head_dim, mask, seqlen_k, max_smem)?;
        Ok(Variant {
            kind: KernelKind::FwdSm80,
            arch,
            head_dim,
            dtype,
            causal: mask.is_causal(),
            tile,
            tma_store: false,
            bwd_overlap: Sm90BwdOverlap::default(),
            ext: FwdExt::default(),
        })
    }

    /// The Hopper kernel (sm_90a) with its long-sequence tile.
    pub fn sm90(head_dim: usize, dtype: DType, mask: Mask, max_smem: usize) -> Result<Variant> {
        Variant::sm90_for(head_dim, dtype, mask, LONG_ROWS, max_smem)
    }

    /// The Hopper kernel (sm_90a) for `seqlen_k` keys.
    pub fn sm90_for(head_dim: usize, dtype: DType, mask: Mask, seqlen_k: usize, max_smem: usize) -> Result<Variant> {
        let tma_store = knobs().sm90_tma_store;
        Variant::sm90_with(head_dim, dtype, mask, seqlen_k, max_smem, tma_store && head_dim <= 128)
    }

    /// The Hopper kernel with the epilogue chosen explicitly.
    pub fn sm90_with(
        head_dim: usize,
        dtype: DType,
        mask: Mask,
        seqlen_k: usize,
        max_smem: usize,
        tma_store: bool,
    ) -> Result<Variant> {
        let tile = tile_config_sm90(head_dim, mask, seqlen_k, max_smem)?;
        Variant::sm90_tile(head_dim, dtype, mask, tile, max_smem, tma_store)
    }

    /// The Hopper kernel on a given tile.
    pub fn sm90_tile(
        head_dim: usize,
        dtype: DType,
        mask: Mask,
        tile: TileConfig,
        max_smem: usize,
        tma_store: bool,
    ) -> Result<Variant> {
        let v = Variant {
            kind: KernelKind::FwdSm90,
            arch: Arch::SM90,
            head_dim,
            dtype,
            causal: mask.is_causal(),
            tile,
            tma_store,
            bwd_overlap: Sm90BwdOverlap::default(),
            ext: FwdExt::default(),
        };
        if v.smem_bytes() > max_smem {
            return Err(Error::Unsupported(format!(
                "{v} needs {} bytes of shared memory, the device allows {max_smem}",
                v.smem_bytes()
            )));
        }
        Ok(v)
    }

    /// Threads per CTA.
    pub fn threads(&self) -> usize {
        match self.kind {
            KernelKind::FwdSm80 => self.tile.threads(),
            // One producer warpgroup plus one consumer warpgroup per 64 query rows.
            KernelKind::FwdSm90 | KernelKind::FwdSm90Fp8 => 128 * (self.tile.block_m() / 64 + 1),
            // 16 keys per warp.
            KernelKind::BwdSm80 => self.tile.block_n() / 16 * 32,
            // One producer warpgroup plus one consumer warpgroup per 64 keys.
            KernelKind::BwdSm90 => 128 * (self.tile.block_n() / 64 + 1),
            KernelKind::BwdPrep | KernelKind::BwdPost => super::backward::BWD_AUX_THREADS,
            KernelKind::Combine => COMBINE_THREADS,
            KernelKind::Fp8Vt => FP8_VT_THREADS,
        }
    }

    /// Dynamic shared memory per CTA.
    pub fn smem_bytes(&self) -> usize {
        match self.kind {
            KernelKind::FwdSm80 => self.tile.smem_bytes(self.head_dim),
            KernelKind::FwdSm90 => {
                // kernels/sm90/config.cuh kOBytes: a 64-row output buffer per consumer warpgroup.
                let o_buffers =
                    if self.tma_store { self.tile.block_m() / 64 * 64 * self.head_dim.div_ceil(64) * 128 } else { 0 };
                // kOnesBytes: the block of ones P·V's row-sum columns read.
                let ones = if self.sum_mma() { self.tile.block_n() * 128 } else { 0 };
                sm90_smem_bytes(&self.tile, self.head_dim) + o_buffers + ones
            }
            KernelKind::BwdSm80 => super::backward::bwd_smem_bytes(&self.tile, self.head_dim),
            KernelKind::BwdSm90 => super::backward::sm90_bwd_smem_bytes(&self.tile, self.head_dim, self.tma_store),
            KernelKind::BwdPrep | KernelKind::BwdPost | KernelKind::Combine | KernelKind::Fp8Vt => 0,
            KernelKind::FwdSm90Fp8 => {
                // kOnesRowsBytes: 8 rows of ones after each stage's transposed V.
                let ones = if self.sum_mma() { self.tile.stages() * 8 * 128 } else { 0 };
                // kPBytes: a 64 x block_n e4m3 P tile per consumer warpgroup.
                let p = if self.fp8_p_smem() { self.tile.block_m() / 64 * 64 * self.tile.block_n() } else { 0 };
                // kVsBytes: two V staging slots the size of a K stage.
                let vs =
                    if self.fp8_vt_smem() { 2 * self.head_dim.div_ceil(128) * self.tile.block_n() * 128 } else { 0 };
                super::tiles::sm90_fp8_smem_bytes(&self.tile, self.head_dim) + ones + p + vs
            }
        }
    }

    /// See [`Variant::with_sum_mma`].
    pub fn sum_mma(&self) -> bool {
        self.ext.sum_mma
    }

    /// The FP8 forward's P·V reads P from shared memory (kernels/sm90/config.cuh `kPSmem`), without
    /// the MMA row sums. By default at d256 without a causal mask, where it lets the
    /// two consumers overlap and ping-pong (bench/NOTES.md, session 19); `FLASHCORE_SM90_P_SMEM=0|1`
    /// forces it.
    pub fn fp8_p_smem(&self) -> bool {
        self.kind == KernelKind::FwdSm90Fp8
            && knobs().sm90_p_smem.unwrap_or(self.head_dim == 256 && !self.causal)
            && !self.sum_mma()
    }

    /// See [`Variant::with_vt_smem`].
    pub fn fp8_vt_smem(&self) -> bool {
        self.ext.vt_smem
    }

    /// For an FP8 problem: V transposed in shared memory by the kernel (kernels/sm90/transpose.cuh,
    /// the producer warpgroup's idle warps) rather than by the fp8_vt.cu pass before it, which
    /// reads and writes V once more in HBM (34 us at 16K tokens of 2048 values, B·S = 16K) and
    /// takes a V-sized scratch. The in-kernel transpose costs the kernel 5-8% (its shared-memory
    /// instructions queue beside the softmax's MUFU work, which bounds FP8), so it pays where the
    /// pass is the larger share: few query rows per key, i.e. (query rows x GQA group, halved
    /// under a causal mask) <= [`VT_SMEM_MAX_ROWS`]. On the H100 (bench/NOTES.md, session 20):
    /// d128 S1K +14%, S2K +5%, S4K -1.5% (pass kept), causal S1K +27%, S4K +3%, S16K -7% (pass
    /// kept); d64 S1K +8%, S4K causal +7%. Where its two staging slots fit: block_n 128, head dim
    /// up to 128. `FLASHCORE_SM90_VT_SMEM=0|1` forces it off or on where it fits.
    pub fn with_vt_smem(self, p: &Problem) -> Variant {
        let group = p.heads / p.kv_heads.max(1);
        let rows = p.seqlen_q * group / if self.causal { 2 } else { 1 };
        if self.vt_smem_fits() && knobs().sm90_vt_smem.unwrap_or(rows <= VT_SMEM_MAX_ROWS) {
            Variant { ext: FwdExt { vt_smem: true, ..self.ext }, ..self }
        } else {
            self
        }
    }

    /// An FP8 forward whose two V staging slots fit beside its ring: block_n 128, head dim up to 128.
    fn vt_smem_fits(&self) -> bool {
        self.kind == KernelKind::FwdSm90Fp8 && self.tile.block_n() == 128 && self.head_dim <= 128
    }

    pub fn defines(&self) -> Vec<(&'static str, String)> {
        let mut d = vec![
            ("FC_HEAD_DIM", self.head_dim.to_string()),
            ("FC_BLOCK_M", self.tile.block_m().to_string()),
            ("FC_BLOCK_N", self.tile.block_n().to_string()),
            ("FC_MIN_BLOCKS", self.tile.min_blocks_per_sm().to_string()),
            ("FC_STAGES", self.tile.stages().to_string()),
            ("FC_DTYPE_BF16", u8::from(self.dtype == DType::Bf16).to_string()),
            ("FC_CAUSAL", u8::from(self.causal).to_string()),
        ];
        for (on, name) in [
            (self.ext.local, "FC_LOCAL"),
            (self.ext.softcap, "FC_SOFTCAP"),
            (self.ext.infer, "FC_INFER"),
            (self.ext.merge, "FC_COMBINE_MERGE"),
        ] {
            if on {
                d.push((name, "1".to_string()));
            }
        }
        if self.ext.cluster {
            d.push(("FC_SM90_CLUSTER", "2".to_string()));
        }
        if self.bwd_dq_smem() {
            d.push(("FC_SM90_BWD_DQ_SMEM", "1".to_string()));
        }
        if self.kind == KernelKind::BwdSm90 && self.bwd_overlap.pingpong {
            d.push(("FC_SM90_BWD_PINGPONG", "1".to_string()));
        }
        if self.kind == KernelKind::BwdSm90 && self.bwd_overlap.pipe {
            d.push(("FC_SM90_BWD_PIPE", "1".to_string()));
        }
        if self.kind == KernelKind::BwdSm90 && self.bwd_overlap.det {
            d.push(("FC_SM90_BWD_DET", "1".to_string()));
        }
        if let (Some(n), KernelKind::BwdSm90) = (knobs().sm90_bwd_probe, self.kind) {
            d.push(("FC_SM90_BWD_PROBE", n.to_string()));
        }
        if let (Some(n), KernelKind::BwdSm90) = (knobs().sm90_bwd_section_mib, self.kind) {
            d.push(("FC_SM90_BWD_SECTION_MIB", n.to_string()));
        }
        if self.kind == KernelKind::FwdSm90Fp8 {
            d.push(("FC_FP8", "1".to_string()));
            d.push(("FC_SM90_Q_STAGES", super::tiles::sm90_fp8_q_stages().to_string()));
            let p_log2 = super::knobs::fp8_p_log2();
            d.push(("FC_FP8_P_LOG2", p_log2.to_string()));
            // P's factor and the slack together stay within e4m3's 448.
            d.push(("FC_RESCALE_SLACK", knobs().rescale_slack.unwrap_or(8).min(8 - p_log2).to_string()));
        }
        if let (Some(n), KernelKind::FwdSm80 | KernelKind::FwdSm90) = (knobs().rescale_slack, self.kind) {
            d.push(("FC_RESCALE_SLACK", n.to_string()));
        }
        if matches!(self.kind, KernelKind::FwdSm90 | KernelKind::FwdSm90Fp8) {
            // Tuning knob: force the intra-warpgroup overlap on (1) or off (0); default per head dim.
            if let Some(on) = knobs().sm90_overlap {
                d.push(("FC_SM90_OVERLAP", u8::from(on).to_string()));
            }
            if self.tma_store {
                d.push(("FC_SM90_TMA_STORE", "1".to_string()));
            }
            if self.sum_mma() {
                d.push(("FC_SM90_SUM_MMA", "1".to_string()));
            }
            if self.kind == KernelKind::FwdSm90 {
                d.push(("FC_SM90_Q_STAGES", super::tiles::sm90_q_stages(self.head_dim).to_string()));
            }
            if let Some(k) = knobs().exp2_poly {
                d.push(("FC_EXP2_POLY", k.to_string()));
            }
            if let Some(on) = knobs().sm90_keep_p {
                d.push(("FC_SM90_KEEP_P", u8::from(on).to_string()));
            }
            if let Some(on) = knobs().sm90_kv_rotate {
                d.push(("FC_SM90_KV_ROTATE", u8::from(on).to_string()));
            }
            if let Some(on) = knobs().sm90_idle_wg {
                d.push(("FC_SM90_IDLE_WG", u8::from(on).to_string()));
            }
            if let Some(n) = knobs().sm90_probe {
                d.push(("FC_SM90_PROBE", n.to_string()));
            }
            // Tuning knob: warpgroup ping-pong on (1) or off (0); default on with two consumers.
            if let Some(on) = knobs().sm90_pingpong {
                d.push(("FC_SM90_PINGPONG", u8::from(on).to_string()));
            }
            if let Some(n) = knobs().sm90_section_mib {
                d.push(("FC_SM90_SECTION_MIB", n.to_string()));
            }
            if self.fp8_p_smem() {
                d.push(("FC_SM90_P_SMEM", "1".to_string()));
            }
            if self.fp8_vt_smem() {
                d.push(("FC_SM90_VT_SMEM", "1".to_string()));
            }
        }
        d
    }

    /// Full NVRTC option list.
    pub fn options(&self) -> Vec<String> {
        let mut o = vec![format!("-arch={}", self.arch.nvrtc_arch()), "-std=c++17".to_string()];
        o.extend(self.defines().into_iter().map(|(k, v)| format!("-D{k}={v}")));
        o
    }

    /// Every variant `warmup` and the CI compile check build for one arch: all supported head dims,
    /// both dtypes, causal and not, short and long key sequences, and on sm_90a the Hopper kernel
    /// (with both epilogues) whether or not it is enabled.
    pub fn standard_set(arch: Arch) -> Vec<Variant> {
        let max_smem = arch.max_smem_per_block();
        let mut out = Vec::new();
        for d in (16..=256).filter(|d| supported_head_dim(*d)) {
            for dtype in [DType::F16, DType::Bf16] {
                for mask in [Mask::None, Mask::CausalTopLeft] {
                    let hopper = arch == Arch::SM90 && sm90_head_dim(d);
                    // Both epilogues of the Hopper kernel, so the opt-in TMA store keeps compiling.
                    let sm90 = [(false, 1), (true, 1), (false, LONG_ROWS), (true, LONG_ROWS)]
                        .into_iter()
                        .filter(move |&(tma, _)| hopper && (!tma || d <= 128))
                        .map(move |(tma, sk)| Variant::sm90_with(d, dtype, mask, sk, max_smem, tma));
                    let sm80 = [1, LONG_ROWS].map(|sk| Variant::sm80(arch, d, dtype, mask, sk, max_smem));
                    // d64's 128-row tile without a mask serves packed GQA tiles (tile_config_sm90_for).
                    let packed = [false, true].into_iter().filter(move |_| hopper && d == 64).map(move |tma| {
                        Variant::sm90_tile(d, dtype, mask, TileConfig::new(128, 128, 1, 2)?, max_smem, tma)
                    });
                    for v in sm80.into_iter().chain(sm90).chain(packed).flatten() {
                        // The cluster build of every Hopper variant of a head dim it applies to, and
                        // the LSE-free build where there is one.
                        let cluster =
                            (v.kind == KernelKind::FwdSm90 && matches!(d, 96 | 128 | 256)).then(|| v.with_cluster());
                        let sums = Some(v.with_sum_mma(false)).filter(|s| s.sum_mma());
                        for v in std::iter::once(v).chain(cluster).chain(sums) {
                            if !out.contains(&v) {
                                out.push(v);
                            }
                        }
                    }
                }
            }
        }
        out.extend(Variant::backward_set(arch));
        out.extend(Variant::inference_set(arch));
        if arch == Arch::SM90 {
            out.extend(Variant::fp8_set());
        }
        out
    }

    /// The inference paths' variants `warmup` and CI build: per Hopper head dim and dtype, the
    /// kernel with every feature on (causal + window + softcap + FC_INFER) and the packed decode
    /// kernel (FC_INFER alone); and the combine and merge kernels for every head dim a forward serves.
    pub fn inference_set(arch: Arch) -> Vec<Variant> {
        let max_smem = arch.max_smem_per_block();
        let mut out = Vec::new();
        for d in (16..=256).filter(|d| supported_head_dim(*d)) {
            for dtype in [DType::F16, DType::Bf16] {
                if arch == Arch::SM90 && sm90_head_dim(d) {
                    let all = Problem {
                        batch: 1,
                        heads: 1,
                        kv_heads: 1,
                        seqlen_q: LONG_ROWS,
                        seqlen_k: LONG_ROWS,
                        head_dim: d,
                        dtype,
                        mask: Mask::CausalBottomRight,
                        scale: 1.0,
                        window: super::super::api::args::Window { left: Some(256), right: None },
                        softcap: Some(30.0),
                    };
                    let decode = Problem {
                        heads: 4,
                        seqlen_q: 1,
                        mask: Mask::None,
                        window: Default::default(),
                        softcap: None,
                        ..all
                    };
                    for p in [all, decode] {
                        if let Ok(v) = Variant::forward_ext(arch, &p, true, max_smem) {
                            out.push(v);
                        }
                    }
                    // Window and softcap on the dense path (no FC_INFER).
                    let capped = Problem { mask: Mask::None, window: Default::default(), ..all };
                    if let Ok(v) = Variant::forward_ext(arch, &capped, false, max_smem) {
                        out.push(v);
                    }
                }
                // The portable kernel with every feature on (it serves them off Hopper and under
                // FLASHCORE_FORCE_SM80), on its short- and long-row tiles.
                if [64, 96, 128, 256].contains(&d) {
                    let all = FwdExt { local: true, softcap: true, infer: true, ..FwdExt::default() };
                    for sk in [1, LONG_ROWS] {
                        if let Ok(v) = Variant::sm80(arch, d, dtype, Mask::CausalBottomRight, sk, max_smem) {
                            let v = Variant { ext: all, ..v };
                            if !out.contains(&v) {
                                out.push(v);
                            }
                        }
                    }
                }
                for merge in [false, true] {
                    if let Ok(v) = Variant::combine(arch, d, dtype, merge) {
                        out.push(v);
                    }
                }
            }
        }
        out
    }

    /// The FP8 forward (sm_90a): e4m3 q, k, v and `out_dtype` output, on its tile (`kv_block_quant`:
    /// k or v has a descale per block of keys, [`super::tiles::tile_config_sm90_fp8`]).
    pub fn fp8_forward(
        head_dim: usize,
        out_dtype: DType,
        mask: Mask,
        seqlen_k: usize,
        kv_block_quant: bool,
        max_smem: usize,
    ) -> Result<Variant> {
        if !matches!(out_dtype, DType::Bf16 | DType::F16) {
            return Err(Error::arg("out", format!("the FP8 forward writes bf16 or fp16, not {}", out_dtype.name())));
        }
        let tile = super::tiles::tile_config_sm90_fp8(head_dim, mask, seqlen_k, kv_block_quant, max_smem)?;
        let v = Variant {
            kind: KernelKind::FwdSm90Fp8,
            arch: Arch::SM90,
            head_dim,
            dtype: out_dtype,
            causal: mask.is_causal(),
            tile,
            tma_store: false,
            bwd_overlap: Sm90BwdOverlap::default(),
            ext: FwdExt::default(),
        };
        if v.smem_bytes() > max_smem {
            return Err(Error::Unsupported(format!("{v} needs {} bytes of shared memory", v.smem_bytes())));
        }
        Ok(v)
    }

    /// The V transpose that runs before an FP8 forward (one per head dim; mask and dtype do not matter).
    pub fn fp8_vt(&self) -> Variant {
        Variant { kind: KernelKind::Fp8Vt, causal: false, dtype: DType::Bf16, ..*self }
    }

    /// Every FP8 variant: head dims 64, 128, 256, both output dtypes, causal and not, plus the V
    /// transposes.
    pub fn fp8_set() -> Vec<Variant> {
        let max_smem = Arch::SM90.max_smem_per_block();
        let mut out = Vec::new();
        for d in [64, 128, 256] {
            for dt in [DType::Bf16, DType::F16] {
                for mask in [Mask::None, Mask::CausalTopLeft] {
                    for (sk, kv_block) in [1, LONG_ROWS].into_iter().flat_map(|sk| [(sk, false), (sk, true)]) {
                        if let Ok(v) = Variant::fp8_forward(d, dt, mask, sk, kv_block, max_smem) {
                            // FP8's LSE-free build only on request (Variant::with_sum_mma), but
                            // compile-checked with the rest.
                            let sums = (d <= 128 && v.tile.block_n() == 128)
                                .then_some(Variant { ext: FwdExt { sum_mma: true, ..v.ext }, ..v });
                            // And each with V transposed in the kernel where that fits (with_vt_smem).
                            let in_kernel = [Some(v), sums]
                                .into_iter()
                                .flatten()
                                .filter(|v| v.vt_smem_fits())
                                .map(|v| Variant { ext: FwdExt { vt_smem: true, ..v.ext }, ..v });
                            for v in [v.fp8_vt(), v].into_iter().chain(sums).chain(in_kernel) {
                                if !out.contains(&v) {
                                    out.push(v);
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

impl std::fmt::Display for Variant {
    /// Stable name used for cache files, logs and bench rows, e.g. `fwd_sm80-sm_90a-d128-bf16-causal-128x64o1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            KernelKind::FwdSm80 => "fwd_sm80",
            KernelKind::FwdSm90 => "fwd_sm90",
            KernelKind::BwdPrep => "bwd_prep",
            KernelKind::BwdSm80 => "bwd_sm80",
            KernelKind::BwdPost => "bwd_post",
            KernelKind::BwdSm90 => "bwd_sm90",
            KernelKind::Combine if self.ext.merge => "merge",
            KernelKind::Combine => "combine",
            KernelKind::FwdSm90Fp8 => "fwd_sm90_fp8",
            KernelKind::Fp8Vt => "fp8_vt",
        };
        if self.kind == KernelKind::Combine {
            return write!(f, "{kind}-{}-d{}-{}", self.arch.nvrtc_arch(), self.head_dim, self.dtype.name());
        }
        write!(
            f,
            "{kind}-{}-d{}-{}-{}-{}{}{}{}{}{}{}{}{}{}{}",
            self.arch.nvrtc_arch(),
            self.head_dim,
            self.dtype.name(),
            if self.causal { "causal" } else { "full" },
            self.tile,
            match (self.tma_store, self.bwd_dq_smem()) {
                (true, true) => "-dqsmem",
                (true, false) => "-tmastore",
                _ => "",
            },
            if self.bwd_overlap.pingpong { "-pp" } else { "" },
            if self.bwd_overlap.pipe { "-pipe" } else { "" },
            if self.bwd_overlap.det { "-det" } else { "" },
            if self.ext.local { "-local" } else { "" },
            if self.ext.softcap { "-softcap" } else { "" },
            if self.ext.infer { "-infer" } else { "" },
            if self.ext.cluster { "-c2" } else { "" },
            if self.ext.sum_mma { "-lsum" } else { "" },
            if self.ext.vt_smem { "-vts" } else { "" },
        )
    }
}
