//! Grid shape of one launch.

use super::tiles::sm90_pack;
use super::variant::{KernelKind, Variant};
use crate::api::args::Problem;

/// Launch geometry of the forward kernels: one CTA per (query block, head, batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launch {
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
    pub smem_bytes: u32,
    pub num_m_blocks: u32,
}

/// Hopper kernel: query rows of one head in a tile (block_m unless GQA heads are packed, see
/// [`sm90_pack`]).
pub fn rows_per_head(v: &Variant, p: &Problem) -> usize {
    let bm = v.tile.block_m();
    if matches!(v.kind, KernelKind::FwdSm90 | KernelKind::FwdSm90Fp8) {
        bm / sm90_pack(bm, p)
    } else {
        bm
    }
}

/// Grid of a two-CTA cluster variant: one cluster per tile pair, at most `max_clusters` (the
/// clusters the device holds at once: the persistent clusters take pair tickets until none are
/// left, so more would only wait), never less than one.
pub fn cluster_grid(tiles: u64, max_clusters: u32) -> u64 {
    2 * tiles.div_ceil(2).min(max_clusters.max(1) as u64)
}

pub fn forward_launch(v: &Variant, p: &Problem, sm_count: u32) -> Launch {
    let bm = v.tile.block_m();
    if matches!(v.kind, KernelKind::FwdSm90 | KernelKind::FwdSm90Fp8) {
        // Persistent: the tile's occupancy in CTAs per SM (one, or up to three for a 64-row tile
        // whose lone consumer leaves room for other CTAs'), each walking tiles (kernels/sm90/scheduler.cuh);
        // fewer when there are fewer tiles. A tile holds `pack` query heads of one GQA group when
        // their queries are few.
        let rows_per_head = rows_per_head(v, p);
        let pack = bm / rows_per_head;
        let num_m_blocks = p.seqlen_q.div_ceil(rows_per_head) as u32;
        let tiles = num_m_blocks as u64 * (p.heads / pack) as u64 * p.batch as u64;
        // Clusters of two take tile pairs: an even grid, at most one CTA per SM (the runtime
        // lowers it further to the clusters the device can hold at once, `cluster_grid`).
        let resident = v.tile.resident_ctas(sm_count);
        let grid = if v.ext.cluster { cluster_grid(tiles, resident / 2) } else { tiles.min(resident as u64) };
        return Launch {
            grid: (grid as u32, 1, 1),
            block: (v.threads() as u32, 1, 1),
            smem_bytes: v.smem_bytes() as u32,
            num_m_blocks,
        };
    }
    let num_m_blocks = p.seqlen_q.div_ceil(bm) as u32;
    Launch {
        // x = query block (the kernel reverses it for causal masks so the longest rows start first),
        // y = head, z = batch; check.rs keeps heads and batch within the 65535 limit of y and z.
        grid: (num_m_blocks, p.heads as u32, p.batch as u32),
        block: (v.threads() as u32, 1, 1),
        smem_bytes: v.smem_bytes() as u32,
        num_m_blocks,
    }
}
