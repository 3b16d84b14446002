//! THE tile table: (arch, head dim, mask) -> tile configuration of the forward kernel.
//! Every block size in flashcore comes from here.

use super::arch::Arch;
use crate::api::args::{Mask, Problem};
use crate::error::{Error, Result};

/// Tile of the sm80 forward kernel: `block_m` query rows per CTA (16 per warp), `block_n` keys per
/// mainloop step, and the occupancy the register budget is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TileConfig {
    block_m: usize,
    block_n: usize,
    min_blocks_per_sm: usize,
    /// K/V ring depth (kernels/common/config.cuh `kStages`): 2 or 3.
    stages: usize,
}

impl TileConfig {
    pub fn new(block_m: usize, block_n: usize, min_blocks_per_sm: usize, stages: usize) -> Result<TileConfig> {
        // The planners pick 2 or 3; up to 6 for tuning runs (FLASHCORE_SM90_TILE, e.g. the decode
        // tiles of 64-key blocks, bench/NOTES.md session 12).
        if !(2..=6).contains(&stages) {
            return Err(Error::arg("tile", format!("stages {stages} must be in 2..=6")));
        }
        if block_m == 0 || block_m % 16 != 0 || block_m > 256 {
            return Err(Error::arg("tile", format!("block_m {block_m} must be a multiple of 16 in [16, 256]")));
        }
        if block_n == 0 || block_n % 16 != 0 || block_n > 256 {
            return Err(Error::arg("tile", format!("block_n {block_n} must be a multiple of 16 in [16, 256]")));
        }
        if !(1..=4).contains(&min_blocks_per_sm) {
            return Err(Error::arg("tile", format!("min_blocks_per_sm {min_blocks_per_sm} must be in 1..=4")));
        }
        Ok(TileConfig { block_m, block_n, min_blocks_per_sm, stages })
    }
    pub fn block_m(&self) -> usize {
        self.block_m
    }
    pub fn block_n(&self) -> usize {
        self.block_n
    }
    pub fn min_blocks_per_sm(&self) -> usize {
        self.min_blocks_per_sm
    }
    pub fn stages(&self) -> usize {
        self.stages
    }
    /// CTAs of this tile resident at once on `sm_count` SMs: a persistent grid needs no more.
    pub fn resident_ctas(&self, sm_count: u32) -> u32 {
        sm_count.max(1) * self.min_blocks_per_sm as u32
    }
    pub fn threads(&self) -> usize {
        self.block_m / 16 * 32
    }
    /// Dynamic shared memory: Q tile + K and V tiles per stage; rows padded to 64 elements for the
    /// swizzle (kernels/common/tile.cuh `SmemTile::kRowElems`).
    pub fn smem_bytes(&self, head_dim: usize) -> usize {
        let row = head_dim.div_ceil(64) * 64 * 2;
        self.block_m * row + self.stages * 2 * self.block_n * row
    }
}

impl std::fmt::Display for TileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}o{}s{}", self.block_m, self.block_n, self.min_blocks_per_sm, self.stages)
    }
}

/// Head dims the forward serves: multiples of 16 (the MMA's K step) from 16 to 256.
pub fn supported_head_dim(d: usize) -> bool {
    d % 16 == 0 && (16..=256).contains(&d)
}

/// Key-sequence length from which d <= 128 switches to the large tile.
pub const LONG_ROWS: usize = 2048;

/// The tile for a forward call: the first of the head dim's preferences that fits the device's
/// shared memory. Every preference compiles without spills on sm_80 and sm_90a (CI checks
/// `cuobjdump -res-usage`). Chosen from H100 sweeps (scripts/gpu/tune.sh, bench/NOTES.md), bf16 TF/s:
/// - d <= 32: 128x64, two CTAs per SM (108 registers); not swept yet.
/// - d <= 64: 64x64 two CTAs, 3 stages: 289 at S=4K against 280 for 128x128s3 and 250 for 128x64s3;
///   235 on the seed shape against 212.
/// - d <= 128, Sk >= 2K: 128x128 one CTA of 8 warps, 3 stages (255 registers, 224 KiB smem): 334 at S=4K
///   against 317 for 64x64o2s3, 302 for 128x64s3 and 283 for 128x64s2 (2 stages need a second barrier
///   per iteration, which keeps warps in lockstep so softmax never overlaps another warp's MMAs).
/// - d <= 128, short keys: 64x64o2s3: 265 at S=512 against 252 for 128x64s3 (more, smaller CTAs fill
///   132 SMs better when each has few key blocks).
/// - d <= 192: 64x32 (239 registers at d=192).
/// - d <= 256: 128x32 (253 registers, 128 KiB smem), else 64x16 (218 registers); 64x32 spills at d=256.
///
/// `FLASHCORE_FWD_TILE=MxNoBsS` (e.g. `128x64o1s3`) overrides the table, for tuning runs.
pub fn tile_config(arch: Arch, head_dim: usize, _mask: Mask, seqlen_k: usize, max_smem: usize) -> Result<TileConfig> {
    if !supported_head_dim(head_dim) {
        return Err(Error::Unsupported(format!(
            "head dim {head_dim}: the forward kernel supports multiples of 16 from 16 to 256"
        )));
    }
    if let Some(s) = &super::knobs::knobs().fwd_tile {
        let t = parse_tile(s)?;
        if t.stages() > 3 {
            return Err(Error::arg("FLASHCORE_FWD_TILE", format!("{s}: the sm80 forward takes 2 or 3 stages")));
        }
        if t.smem_bytes(head_dim) > max_smem {
            return Err(Error::arg(
                "FLASHCORE_FWD_TILE",
                format!("{s} needs more shared memory than {max_smem} bytes"),
            ));
        }
        return Ok(t);
    }
    let _ = arch;
    let prefs: &[(usize, usize, usize, usize)] = match head_dim {
        0..=32 => &[(128, 64, 2, 2)],
        33..=64 => &[(64, 64, 2, 3), (64, 64, 2, 2)],
        65..=128 if seqlen_k >= LONG_ROWS => &[(128, 128, 1, 3), (64, 64, 2, 3), (64, 64, 2, 2)],
        65..=128 => &[(64, 64, 2, 3), (64, 64, 2, 2)],
        129..=192 => &[(64, 32, 1, 2)],
        _ => &[(128, 32, 1, 2), (64, 16, 1, 2)],
    };
    for &(m, n, o, st) in prefs {
        let t = TileConfig::new(m, n, o, st)?;
        if t.smem_bytes(head_dim) <= max_smem {
            return Ok(t);
        }
    }
    Err(Error::Unsupported(format!(
        "head dim {head_dim}: no tile fits the device's {max_smem} bytes of shared memory per block"
    )))
}

/// Head dims the Hopper kernel serves (wgmma N shapes generated for them; d 96 pads its shared
/// memory tiles to two 64-column blocks).
pub fn sm90_head_dim(d: usize) -> bool {
    matches!(d, 64 | 96 | 128 | 256)
}

/// The Hopper kernel's tile (block_m = 64 rows per consumer warpgroup), from H100 sweeps
/// (bench/NOTES.md), bf16 TF/s at S=4K non-causal / causal:
/// - d 64: 192x128, three consumer warpgroups, no intra-warpgroup overlap: 491/408 against 451/377
///   for 128x128 and 365/337 for 128x64 (the third warpgroup hides the softmax, which at d 64 costs
///   almost as much as the GEMMs).
/// - d 128: 128x128, two stages: 648/560; three stages 642/558.
/// - d 256: 128x64 (192 KiB of shared memory), overlap on: 642/554.
/// - d 64 causal with at most 1K keys: 64x64 at three CTAs per SM (one consumer warpgroup each,
///   serial). With few key blocks per row the 192-row tile's diagonal waste dominates (245 against
///   217 TF/s at S512 for 128x128 on the H100), and on 128x128 the two warpgroups wait for each
///   other at every block and tile end; three independent CTAs on 64-row tiles do not, and 64-key
///   blocks cut the diagonal's waste further. On the H200 (bench/NOTES.md session 26): S512 causal
///   270.6 against 247.7 TF/s for 128x128, S1K causal 348 against 322; at S2K level (400), at S4K
///   433 against 462 for 192x128. 64x128 at two CTAs per SM: 232 / 313; 64x64 at two: 227 / 290.
///   [`tile_config_sm90_for`] keeps 128x128 where a tile's rows see more keys (more than 1K
///   queries), [`crate::plan::Variant::forward_ext`] for the window, softcap and inference
///   builds (its producer needs 40 registers, which leaves a third CTA's consumer too few).
///
/// Shared memory: [`sm90_smem_bytes`]. `FLASHCORE_SM90_TILE=MxNoBsS` overrides, for tuning runs
/// (occupancy B > 1: 64-row tiles only, kernels/sm90/config.cuh `kCtasPerSm`).
pub fn tile_config_sm90(head_dim: usize, mask: Mask, seqlen_k: usize, max_smem: usize) -> Result<TileConfig> {
    if let Some(s) = &super::knobs::knobs().sm90_tile {
        let t = parse_tile(s)?;
        // Several CTAs per SM share its shared memory (1 KiB each reserved) and registers: three at
        // most, and only a 64-row tile's (one consumer warpgroup, kernels/sm90/config.cuh).
        let occ = t.min_blocks_per_sm();
        if sm90_smem_bytes(&t, head_dim) > (max_smem + 1024) / occ - 1024
            || (occ > 1 && (occ > 3 || t.block_m() != 64))
            || t.block_m() % 64 != 0
            || ![64, 80, 96, 128, 160, 176, 192, 256].contains(&t.block_n())
        {
            return Err(Error::arg(
                "FLASHCORE_SM90_TILE",
                format!("{s} is not a valid sm90 tile for head dim {head_dim}"),
            ));
        }
        return Ok(t);
    }
    let t = match head_dim {
        64 if mask.is_causal() && seqlen_k <= SHORT_CAUSAL_KEYS => TileConfig::new(64, 64, 3, 2)?,
        64 => TileConfig::new(192, 128, 1, 2)?,
        96 | 128 => TileConfig::new(128, 128, 1, 2)?,
        256 => TileConfig::new(128, 64, 1, 2)?,
        _ => return Err(Error::Unsupported(format!("head dim {head_dim} on the sm90 kernel"))),
    };
    if sm90_smem_bytes(&t, head_dim) > max_smem {
        return Err(Error::Unsupported(format!("sm90 tile {t} for head dim {head_dim} exceeds {max_smem} bytes")));
    }
    Ok(t)
}

/// d64 causal rows up to this many keys (and queries, [`tile_config_sm90_for`]) run the 64x64 tile
/// at three CTAs per SM ([`tile_config_sm90`]).
pub const SHORT_CAUSAL_KEYS: usize = 1024;

/// Query heads of one GQA group the Hopper kernel packs into a tile of `block_m` rows: with few
/// queries (decode, speculative decoding, small chunks) a tile of one head would be mostly padding
/// and every head would read its group's K/V again; packed, `pack` heads share the tile's rows and
/// its K/V loads. The pack divides the group, leaves rows_per_head = block_m / pack in {16, 32, 64}
/// (whole 16-row warps of one head, and whole heads per 64-row consumer warpgroup for the O store)
/// and at least Sq; 1 (no packing) when none does or Sq > 64. `FLASHCORE_SM90_PACK=k` (A/B runs)
/// takes k wherever it divides the group and the tile's rows, at any Sq: the kernel's tiles are
/// (rows_per_head query rows) x (pack heads) whatever Sq is (correct and level on the H100 at GQA
/// 32/8 S8K and MQA 16/1 S2K, bench/NOTES.md session 14).
pub fn sm90_pack(block_m: usize, p: &Problem) -> usize {
    let group = p.heads / p.kv_heads.max(1);
    if let Some(k) = super::knobs::knobs().sm90_pack {
        if group % k == 0 && block_m % k == 0 && matches!(block_m / k, 16 | 32 | 64 | 128 | 192) {
            return k;
        }
    }
    if group < 2 || p.seqlen_q > 64 {
        return 1;
    }
    (2..=block_m / 16)
        .filter(|&pk| group % pk == 0 && block_m % pk == 0)
        .filter(|&pk| matches!(block_m / pk, 16 | 32 | 64) && block_m / pk >= p.seqlen_q)
        .max()
        .unwrap_or(1)
}

/// The Hopper kernel's tile for a whole problem: [`tile_config_sm90`], except that d64's 192-row
/// tile gives way to 128 rows where only those can pack a GQA group (192 / pack must be 16, 32 or
/// 64, i.e. groups of 3, 6 or 12), and d64's short causal tile (64x64, three CTAs per SM) to
/// 128x128 when more than [`SHORT_CAUSAL_KEYS`] queries make most tiles long (Sq 4097 against Sk
/// 1000, bottom-right: 358 against 451 TF/s for 64x128 at two CTAs, session 26's validate runs).
pub fn tile_config_sm90_for(p: &Problem, max_smem: usize) -> Result<TileConfig> {
    let t = tile_config_sm90(p.head_dim, p.mask, p.seqlen_k, max_smem)?;
    if super::knobs::knobs().sm90_tile.is_none() && t.min_blocks_per_sm() > 1 && p.seqlen_q > SHORT_CAUSAL_KEYS {
        return TileConfig::new(128, 128, 1, t.stages());
    }
    if super::knobs::knobs().sm90_tile.is_none()
        && t.block_m() == 192
        && sm90_pack(192, p) == 1
        && sm90_pack(128, p) > 1
    {
        return TileConfig::new(128, t.block_n(), 1, t.stages());
    }
    Ok(t)
}

/// kernels/sm90/config.cuh `kQStages`: two Q slots (the next tile's Q loads while the current one
/// runs) where they fit beside the K/V ring, i.e. up to head dim 128. `FLASHCORE_SM90_Q_STAGES`
/// overrides, for A/B runs.
pub fn sm90_q_stages(head_dim: usize) -> usize {
    super::knobs::knobs().sm90_q_stages.unwrap_or(if head_dim <= 128 { 2 } else { 1 })
}

/// kernels/sm90/config.cuh `kSmemBytes` without the epilogue's buffers: Q slots + stages x (K + V),
/// head dim in blocks of 64, plus 2 KiB for the 1024-byte alignment of the tiles and the mbarriers.
pub fn sm90_smem_bytes(t: &TileConfig, head_dim: usize) -> usize {
    let dblocks = head_dim.div_ceil(64);
    sm90_q_stages(head_dim) * dblocks * t.block_m() * 128 + t.stages() * 2 * dblocks * t.block_n() * 128 + 2048
}

/// Parses `MxN`, `MxNoB` or `MxNoBsS` (occupancy B defaults to 1, stages S to 2).
pub fn parse_tile(s: &str) -> Result<TileConfig> {
    let bad = || Error::arg("tile", format!("`{s}` is not a tile like 128x64, 128x64o1 or 128x64o1s3"));
    let (rest, stages) = match s.split_once('s') {
        Some((a, b)) => (a, b.parse().map_err(|_| bad())?),
        None => (s, 2),
    };
    let (mn, occ) = match rest.split_once('o') {
        Some((a, b)) => (a, b.parse().map_err(|_| bad())?),
        None => (rest, 1),
    };
    let (m, n) = mn.split_once('x').ok_or_else(bad)?;
    TileConfig::new(m.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?, occ, stages)
}

/// The FP8 forward's tile (kernels/sm90/config.cuh: block_n is one 128-key row of the transposed V
/// and one k descale block), from H100 runs (bench/NOTES.md "FP8 forward"): d 64 and d 128 on three
/// consumer warpgroups (192 rows; d128 at S4K 855 TF/s against 800 on 128x128, S16K 951 against
/// 879), except d 128 causal with at most 1K keys (128x128: 386 against 358 TF/s, the 192-row
/// tile's diagonal waste); d 256 on two.
/// `kv_block_quant`: k or v carries a descale per block of 128 keys, which the kernel reads per key
/// block, so such calls keep block_n 128.
/// `FLASHCORE_SM90_FP8_TILE=MxNsS` overrides (block_n 128 or 256), for tuning runs, where it can.
pub fn tile_config_sm90_fp8(
    head_dim: usize,
    mask: Mask,
    seqlen_k: usize,
    kv_block_quant: bool,
    max_smem: usize,
) -> Result<TileConfig> {
    if let Some(s) = &super::knobs::knobs().sm90_fp8_tile {
        let t = parse_tile(s)?;
        if !matches!(t.block_n(), 128 | 256) || t.block_m() % 64 != 0 || t.block_m() > 192 {
            return Err(Error::arg(
                "FLASHCORE_SM90_FP8_TILE",
                format!("{s} is not an FP8 tile (Mx128 or Mx256, M 64..192)"),
            ));
        }
        // Where the override cannot serve (a 256-key block with block-quantized k / v, or a tile
        // over the shared memory: d256 on 256 keys), the call keeps the default.
        if sm90_fp8_smem_bytes(&t, head_dim) <= max_smem && (t.block_n() == 128 || !kv_block_quant) {
            return Ok(t);
        }
    }
    match head_dim {
        64 => TileConfig::new(192, 128, 1, 2),
        128 if mask.is_causal() && seqlen_k <= 1024 => TileConfig::new(128, 128, 1, 2),
        128 => TileConfig::new(192, 128, 1, 2),
        256 => TileConfig::new(128, 128, 1, 2),
        _ => Err(Error::Unsupported(format!("head dim {head_dim} on the FP8 forward (64, 128 or 256)"))),
    }
}

/// Q slots of the FP8 forward: two at every head dim (its tiles are half the bytes of 16-bit ones).
pub fn sm90_fp8_q_stages() -> usize {
    super::knobs::knobs().sm90_q_stages.unwrap_or(2)
}

/// kernels/sm90/config.cuh `kSmemBytes` with FC_FP8: Q slots and K in 128-byte rows of 128 head-dim
/// values, the transposed V as block_n x head_dim bytes, plus 2 KiB (alignment and mbarriers).
pub fn sm90_fp8_smem_bytes(t: &TileConfig, head_dim: usize) -> usize {
    let dblocks = head_dim.div_ceil(128);
    sm90_fp8_q_stages() * dblocks * t.block_m() * 128
        + t.stages() * (dblocks * t.block_n() * 128 + t.block_n() * head_dim)
        + 2048
}
