//! THE tile table: (arch, head dim, mask) -> tile configuration of the forward kernel.
//! Every block size in flashcore comes from here.

use super::arch::Arch;
use crate::api::args::Mask;
use crate::error::{Error, Result};

/// Tile of the sm80 forward kernel: `block_m` query rows per CTA (16 per warp), `block_n` keys per
/// mainloop step, and the occupancy the register budget is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TileConfig {
    block_m: usize,
    block_n: usize,
    min_blocks_per_sm: usize,
}

/// K/V ring depth of the sm80 kernel (kernels/common/config.cuh `kStages`).
pub const KV_STAGES: usize = 2;

impl TileConfig {
    pub fn new(block_m: usize, block_n: usize, min_blocks_per_sm: usize) -> Result<TileConfig> {
        if block_m == 0 || block_m % 16 != 0 || block_m > 256 {
            return Err(Error::arg("tile", format!("block_m {block_m} must be a multiple of 16 in [16, 256]")));
        }
        if block_n == 0 || block_n % 16 != 0 || block_n > 256 {
            return Err(Error::arg("tile", format!("block_n {block_n} must be a multiple of 16 in [16, 256]")));
        }
        if !(1..=4).contains(&min_blocks_per_sm) {
            return Err(Error::arg("tile", format!("min_blocks_per_sm {min_blocks_per_sm} must be in 1..=4")));
        }
        Ok(TileConfig { block_m, block_n, min_blocks_per_sm })
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
    pub fn threads(&self) -> usize {
        self.block_m / 16 * 32
    }
    /// Dynamic shared memory: Q tile + K and V tiles per stage; rows padded to 64 elements for the
    /// swizzle (kernels/common/tile.cuh `SmemTile::kRowElems`).
    pub fn smem_bytes(&self, head_dim: usize) -> usize {
        let row = head_dim.div_ceil(64) * 64 * 2;
        self.block_m * row + KV_STAGES * 2 * self.block_n * row
    }
}

impl std::fmt::Display for TileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}o{}", self.block_m, self.block_n, self.min_blocks_per_sm)
    }
}

/// Head dims the forward serves: multiples of 16 (the MMA's K step) from 16 to 256.
pub fn supported_head_dim(d: usize) -> bool {
    d % 16 == 0 && (16..=256).contains(&d)
}

/// The tile for a forward call. Rows were picked from register counts (`cuobjdump -res-usage`,
/// every row compiles without spills on sm_80 and sm_90a) and then H100 timings:
/// - d <= 32: 128x64, two CTAs per SM (108 registers).
/// - d <= 64: 128x128 one CTA (216 registers); 128x64 needs 149 registers, too many for two CTAs.
/// - d <= 128: 128x64, one CTA of 8 warps (202 registers); forcing two CTAs (128 registers) spills.
/// - d <= 192: 64x32 (239 registers at d=192).
/// - d <= 256: 128x32 (253 registers, 128 KiB smem) where the smem fits, else 64x16 (218 registers);
///   64x32 spills at d=256.
///
/// `FLASHCORE_FWD_TILE=MxNoB` (e.g. `128x64o1`) overrides the table, for tuning runs.
pub fn tile_config(arch: Arch, head_dim: usize, _mask: Mask, max_smem: usize) -> Result<TileConfig> {
    if !supported_head_dim(head_dim) {
        return Err(Error::Unsupported(format!(
            "head dim {head_dim}: the forward kernel supports multiples of 16 from 16 to 256"
        )));
    }
    if let Ok(s) = std::env::var("FLASHCORE_FWD_TILE") {
        let t = parse_tile(&s)?;
        if t.smem_bytes(head_dim) > max_smem {
            return Err(Error::arg("FLASHCORE_FWD_TILE", format!("{s} needs more shared memory than {max_smem} bytes")));
        }
        return Ok(t);
    }
    let _ = arch;
    let t = match head_dim {
        0..=32 => TileConfig::new(128, 64, 2)?,
        33..=64 => TileConfig::new(128, 128, 1)?,
        65..=128 => TileConfig::new(128, 64, 1)?,
        129..=192 => TileConfig::new(64, 32, 1)?,
        _ => {
            let big = TileConfig::new(128, 32, 1)?;
            if big.smem_bytes(head_dim) <= max_smem {
                big
            } else {
                TileConfig::new(64, 16, 1)?
            }
        }
    };
    if t.smem_bytes(head_dim) > max_smem {
        return Err(Error::Unsupported(format!(
            "head dim {head_dim} needs {} bytes of shared memory, the device allows {max_smem}",
            t.smem_bytes(head_dim)
        )));
    }
    Ok(t)
}

/// Parses `MxN` or `MxNoB`.
pub fn parse_tile(s: &str) -> Result<TileConfig> {
    let bad = || Error::arg("tile", format!("`{s}` is not a tile like 128x64 or 128x64o1"));
    let (mn, occ) = match s.split_once('o') {
        Some((a, b)) => (a, b.parse().map_err(|_| bad())?),
        None => (s, 1),
    };
    let (m, n) = mn.split_once('x').ok_or_else(bad)?;
    TileConfig::new(m.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?, occ)
}
