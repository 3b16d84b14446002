//! Tuning and opt-out switches, read from the environment once per process (the planner runs on
//! every attention call; re-reading the environment there would put a global lock on the hot path).

use std::sync::OnceLock;

/// Every `FLASHCORE_*` planning switch.
#[derive(Clone, Debug, Default)]
pub struct Knobs {
    /// `FLASHCORE_SM90=0` or `FLASHCORE_FORCE_SM80=1`: the portable kernel on Hopper too.
    pub sm90_disabled: bool,
    /// `FLASHCORE_SM90_BWD=0` or `FLASHCORE_FORCE_SM80=1`: the portable backward on Hopper too (A/B).
    pub sm90_bwd_disabled: bool,
    /// `FLASHCORE_FWD_TILE=MxNoBsS`: the sm80 kernel's tile (tuning runs).
    pub fwd_tile: Option<String>,
    /// `FLASHCORE_SM90_TILE=MxNoBsS`: the Hopper kernel's tile (tuning runs; occupancy B > 1, i.e.
    /// several CTAs per SM, for 64-row tiles only).
    pub sm90_tile: Option<String>,
    /// `FLASHCORE_SM90_FP8_TILE=MxNsS`: the FP8 forward's tile (plan/tiles.rs `tile_config_sm90_fp8`).
    pub sm90_fp8_tile: Option<String>,
    /// `FLASHCORE_SM90_TMA_STORE=0`: the Hopper kernel writes O from registers instead of through
    /// shared memory and a TMA store (the default up to head dim 128).
    pub sm90_tma_store: bool,
    /// `FLASHCORE_SM90_Q_STAGES=1|2`: Q slots of the Hopper kernel (A/B runs).
    pub sm90_q_stages: Option<usize>,
    /// `FLASHCORE_EXP2_POLY=k`: the Hopper kernel's softmax computes every k-th group of 8 score
    /// columns' exponentials with a polynomial on the FMA pipe (0: all on MUFU).
    pub exp2_poly: Option<usize>,
    /// `FLASHCORE_SM90_PROBE=bits`: timing probes of the Hopper forward that give wrong outputs
    /// (kernels/sm90/consumer.cuh): 1 drops the softmax's exponentials, 2 the whole softmax, 4 the
    /// K/V reloads once the stage ring is full, 8 takes Q·Kᵀ's A operand from registers (d128); the
    /// FP8 in-kernel V transpose (kernels/sm90/transpose.cuh) without its data movement (16) or with
    /// one warp doing it (32). Bits 16 and 32 were filtered out until session 31.
    pub sm90_probe: Option<u8>,
    /// `FLASHCORE_SM90_BWD_PROBE=bits`: timing probes of the Hopper backward's pipelined loop that
    /// give wrong gradients (kernels/sm90/bwd_consumer.cuh): 1 drops the dQ reduce issuer's wait
    /// for its buffer's previous read, 2 the dQ-full barrier, 4 the dQ bulk reduce, 8 the per-step
    /// dS barrier (with 2), 16 the dQ tile's shared-memory stores, 32 stores the tile's bytes as
    /// 16-byte stores in thread order (wrong layout, fewer instructions), 64 the dSᵀ stores.
    pub sm90_bwd_probe: Option<u8>,
    /// `FLASHCORE_SM90_KEEP_P=0|1`: force off or on keeping P's registers allocated until the
    /// overlapped loop's softmax is done (kernels/sm90/consumer.cuh `kKeepP`).
    pub sm90_keep_p: Option<bool>,
    /// `FLASHCORE_SM90_CLUSTER=0|1`: turn the Hopper forward's two-CTA clusters (K/V multicast) off
    /// or on wherever they apply (plan/variant.rs `Variant::cluster_fits`; default: d256, and d96 /
    /// d128 from `CLUSTER_MIN_KEYS` keys).
    pub sm90_cluster: Option<bool>,
    /// `FLASHCORE_SM90_KV_ROTATE=0|1`: dense non-causal Hopper tiles start their key loop at a block
    /// spread by query block (kernels/sm90/config.cuh `kRotate`; default on at d256 only).
    pub sm90_kv_rotate: Option<bool>,
    /// `FLASHCORE_SM90_IDLE_WG=0|1`: whether the Hopper forward's consumer warpgroups skip their
    /// main loop when none of their rows is in the sequence (kernels/sm90/config.cuh `kIdleWg`;
    /// default on for dense 16-bit d64, the one head dim measured; A/B runs).
    pub sm90_idle_wg: Option<bool>,
    /// `FLASHCORE_SM90_SUM_MMA=0|1`: the Hopper forward's softmax sums its rows with FADDs also
    /// when no LSE is wanted (0), or takes them from P·V's extra columns of ones on FP8 too (1;
    /// less accurate there) (plan/variant.rs `Variant::with_sum_mma`).
    pub sm90_sum_mma: Option<bool>,
    /// `FLASHCORE_SM90_PACK=k`: pack k query heads of a GQA group into each Hopper forward tile at
    /// any query length, not only when a head's queries fit one tile (plan/tiles.rs `sm90_pack`;
    /// A/B runs; 1: no packing; ignored where k does not divide the group and the tile's rows, or
    /// leaves other than 16, 32 or 64 rows per head).
    pub sm90_pack: Option<usize>,
    /// `FLASHCORE_SM90_OVERLAP=0|1`: force the intra-warpgroup overlap off or on.
    pub sm90_overlap: Option<bool>,
    /// `FLASHCORE_SM90_PINGPONG=0|1`: force the warpgroup ping-pong off or on.
    pub sm90_pingpong: Option<bool>,
    /// `FLASHCORE_SM90_P_SMEM=0|1`: the FP8 forward's P·V reads P from shared memory instead of
    /// registers (kernels/sm90/config.cuh `kPSmem`).
    pub sm90_p_smem: Option<bool>,
    /// `FLASHCORE_SM90_VT_SMEM=0|1`: the FP8 forward transposes V in shared memory (kernels/sm90/
    /// transpose.cuh) instead of in a separate pass over HBM (kernels/sm90/fp8_vt.cu).
    pub sm90_vt_smem: Option<bool>,
    /// `FLASHCORE_SM90_SECTION_MIB=n`: the L2 budget of the Hopper forward's causal tile sections
    /// (kernels/sm90/scheduler.cuh `Scheduler::section`; 0 orders causal tiles head by head).
    pub sm90_section_mib: Option<u32>,
    /// `FLASHCORE_SM90_BWD_SECTION_MIB=n`: the same for the Hopper backward's causal CTAs
    /// (kernels/sm90/bwd_config.cuh `Work::sectioned`; 0 keeps the launch order).
    pub sm90_bwd_section_mib: Option<u32>,
    /// `FLASHCORE_SM90_BWD_SPLIT=n`: CTAs per GQA group in the Hopper backward (1: the whole group
    /// in one CTA; A/B runs), instead of plan/backward.rs `sm90_bwd_kv_splits`'s choice.
    pub sm90_bwd_split: Option<usize>,
    /// The Hopper backward adds each step's dQ tile to the fp32 accumulator from shared memory
    /// with one bulk reduce (FlashAttention-3's dQ path) instead of red.global from registers: on by
    /// default (+31-36% at D128 S4K on the H100, bench/NOTES.md); `FLASHCORE_SM90_BWD_DQ_SMEM=0`
    /// turns it off. The deterministic mode orders the bulk reduces on this path (plan/backward.rs
    /// `bwd_deterministic`; red.global with a window or at d64 with a softcap).
    pub sm90_bwd_dq_smem: bool,
    /// `FLASHCORE_SM90_BWD_PINGPONG=1`: the Hopper backward's consumer warpgroups take turns
    /// issuing GEMMs (default off; plan/backward.rs `Sm90BwdOverlap`).
    pub sm90_bwd_pingpong: bool,
    /// The Hopper backward issues step i's dQ GEMM with step i+1's Sᵀ and dPᵀ (shared-memory dQ
    /// path only): on by default (+1-6% on the S4K rows, A B A B on the H100, bench/NOTES.md);
    /// `FLASHCORE_SM90_BWD_PIPE=0` turns it off.
    pub sm90_bwd_pipe: bool,
    /// `FLASHCORE_SM90_BWD_TILE=64|80`: query rows per step of the Hopper backward at head dims 96
    /// and 128 instead of the planner's choice (80 without a causal mask; plan/backward.rs
    /// `sm90_bwd_tile_config`). 80 needs the shared-memory dQ path.
    pub sm90_bwd_block_m: Option<usize>,
    /// `FLASHCORE_SM90_BWD_CONVERT=0|1`: the Hopper backward converts dQ from its fp32 accumulator
    /// inside the main kernel (kernels/sm90/bwd_convert.cuh) rather than in the post kernel, where
    /// plan/backward.rs `sm90_bwd_convert` allows it: on by default there (A B A B on the H100,
    /// bench/NOTES.md session 21: D128 S1K +3.6%, D64 S1K +3.8%, S4K level).
    pub sm90_bwd_convert: bool,
    /// `FLASHCORE_SM90_BWD_CONVERT_LAG=n` (>= 1): the in-kernel dQ conversion's lag in grid rows
    /// instead of a wave's worth: lets small test shapes convert.
    pub sm90_bwd_convert_lag: Option<usize>,
    /// `FLASHCORE_SM90_BWD_ZERO=0|1`: the Hopper backward zeroes its fp32 dQ accumulator inside the
    /// main kernel (kernels/sm90/bwd_zero.cuh) rather than in the prep kernel, where plan/backward.rs
    /// `sm90_bwd_zero_lag` allows it (default on).
    pub sm90_bwd_zero: bool,
    /// `FLASHCORE_SM90_BWD_ZERO_LAG=n` (>= 1): the in-kernel zeroing's lag in grid rows instead of
    /// a wave's worth (raised to a causal section's rows): lets small test shapes zero in the kernel.
    pub sm90_bwd_zero_lag: Option<usize>,
    /// `FLASHCORE_FP8_P_LOG2=n` (0..=8): the FP8 forward multiplies P by 2^n before its e4m3 cast
    /// (default [`FP8_P_LOG2`]; kernels/common/config.cuh FC_FP8_P_LOG2). Read it through
    /// [`fp8_p_log2`].
    pub fp8_p_log2: Option<u32>,
    /// `FLASHCORE_RESCALE_SLACK=n` (0..=8): the forwards' softmax keeps a row's stale max until
    /// the new one exceeds it by more than n in log2 units, 0 rescaling whenever the max moves
    /// (kernels/common/config.cuh FC_RESCALE_SLACK; default 8; FP8 caps it at 8 - its P factor's
    /// log2, so that P stays within e4m3's range).
    pub rescale_slack: Option<u32>,
    /// `FLASHCORE_SM90_GRID=n` (>= 1): at most n CTAs in the persistent Hopper bf16/fp16 forward's
    /// grid (rounded down to even for two-CTA clusters): for experiments on how the last round
    /// of tiles fills the SMs (bench/NOTES.md session 30).
    pub sm90_grid: Option<u32>,
}

impl Knobs {
    pub fn from_env() -> Knobs {
        let var = |name: &str| std::env::var(name).ok();
        let flag = |name: &str| var(name).map(|v| v != "0");
        Knobs {
            sm90_disabled: var("FLASHCORE_SM90").is_some_and(|v| v == "0") || var("FLASHCORE_FORCE_SM80").is_some(),
            sm90_bwd_disabled: var("FLASHCORE_SM90_BWD").is_some_and(|v| v == "0")
                || var("FLASHCORE_FORCE_SM80").is_some(),
            fwd_tile: var("FLASHCORE_FWD_TILE"),
            sm90_tile: var("FLASHCORE_SM90_TILE"),
            sm90_fp8_tile: var("FLASHCORE_SM90_FP8_TILE"),
            sm90_tma_store: var("FLASHCORE_SM90_TMA_STORE").is_none_or(|v| v != "0"),
            exp2_poly: var("FLASHCORE_EXP2_POLY").and_then(|v| v.parse().ok()).filter(|k| *k <= 16),
            sm90_q_stages: var("FLASHCORE_SM90_Q_STAGES").and_then(|v| v.parse().ok()).filter(|n| matches!(n, 1 | 2)),
            sm90_probe: var("FLASHCORE_SM90_PROBE").and_then(|v| v.parse().ok()).filter(|n| (1..=63).contains(n)),
            sm90_bwd_probe: var("FLASHCORE_SM90_BWD_PROBE")
                .and_then(|v| v.parse().ok())
                .filter(|n| (1..=127).contains(n)),
            sm90_keep_p: flag("FLASHCORE_SM90_KEEP_P"),
            sm90_cluster: flag("FLASHCORE_SM90_CLUSTER"),
            sm90_kv_rotate: flag("FLASHCORE_SM90_KV_ROTATE"),
            sm90_idle_wg: flag("FLASHCORE_SM90_IDLE_WG"),
            sm90_sum_mma: flag("FLASHCORE_SM90_SUM_MMA"),
            sm90_pack: var("FLASHCORE_SM90_PACK").and_then(|v| v.parse().ok()).filter(|n| *n >= 1),
            sm90_overlap: flag("FLASHCORE_SM90_OVERLAP"),
            sm90_pingpong: flag("FLASHCORE_SM90_PINGPONG"),
            sm90_p_smem: flag("FLASHCORE_SM90_P_SMEM"),
            sm90_vt_smem: flag("FLASHCORE_SM90_VT_SMEM"),
            sm90_section_mib: var("FLASHCORE_SM90_SECTION_MIB").and_then(|v| v.parse().ok()).filter(|n| *n <= 1024),
            sm90_bwd_section_mib: var("FLASHCORE_SM90_BWD_SECTION_MIB")
                .and_then(|v| v.parse().ok())
                .filter(|n| *n <= 1024),
            sm90_bwd_split: var("FLASHCORE_SM90_BWD_SPLIT").and_then(|v| v.parse().ok()).filter(|n| *n >= 1),
            sm90_bwd_dq_smem: var("FLASHCORE_SM90_BWD_DQ_SMEM").is_none_or(|v| v != "0"),
            sm90_bwd_pingpong: flag("FLASHCORE_SM90_BWD_PINGPONG").unwrap_or(false),
            sm90_bwd_convert: flag("FLASHCORE_SM90_BWD_CONVERT").unwrap_or(true),
            sm90_bwd_convert_lag: var("FLASHCORE_SM90_BWD_CONVERT_LAG")
                .and_then(|v| v.parse().ok())
                .filter(|n| *n >= 1),
            sm90_bwd_zero: flag("FLASHCORE_SM90_BWD_ZERO").unwrap_or(true),
            sm90_bwd_zero_lag: var("FLASHCORE_SM90_BWD_ZERO_LAG").and_then(|v| v.parse().ok()).filter(|n| *n >= 1),
            sm90_bwd_pipe: flag("FLASHCORE_SM90_BWD_PIPE").unwrap_or(true),
            sm90_bwd_block_m: var("FLASHCORE_SM90_BWD_TILE")
                .and_then(|v| v.parse().ok())
                .filter(|n| matches!(n, 64 | 80)),
            fp8_p_log2: var("FLASHCORE_FP8_P_LOG2").and_then(|v| v.parse().ok()).filter(|n| *n <= 8),
            rescale_slack: var("FLASHCORE_RESCALE_SLACK").and_then(|v| v.parse().ok()).filter(|n| *n <= 8),
            sm90_grid: var("FLASHCORE_SM90_GRID").and_then(|v| v.parse().ok()).filter(|n| *n >= 1),
        }
    }
}

/// log2 of the FP8 forward's default P factor, which leaves no room for the rescale slack (e4m3's
/// largest finite value is 448 < 2^9). 2^4 with a slack of 4 measured +2-3.5% at D128 / D256 on
/// the H100 and the same RMSE on the outlier test, but larger maximum errors: 5 of the 40 FP8 rows
/// of `flashcore fp8` and the FP8 GPU test failed the naive FP8 bar (bench/NOTES.md, session 10).
pub const FP8_P_LOG2: u32 = 8;

/// The FP8 forward's P factor (log2): `FLASHCORE_FP8_P_LOG2` or [`FP8_P_LOG2`].
pub fn fp8_p_log2() -> u32 {
    knobs().fp8_p_log2.unwrap_or(FP8_P_LOG2)
}

/// The process's switches, read on first use.
pub fn knobs() -> &'static Knobs {
    static KNOBS: OnceLock<Knobs> = OnceLock::new();
    KNOBS.get_or_init(Knobs::from_env)
}
