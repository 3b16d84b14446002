//! Grid shape of one launch.

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

pub fn forward_launch(v: &Variant, p: &Problem, sm_count: u32) -> Launch {
    let bm = v.tile.block_m();
    let num_m_blocks = p.seqlen_q.div_ceil(bm) as u32;
    if v.kind == KernelKind::FwdSm90 {
        // Persistent: one CTA per SM (registers allow no more), each walking tiles
        // (kernels/sm90/scheduler.cuh); fewer when there are fewer tiles than SMs.
        let tiles = num_m_blocks as u64 * p.heads as u64 * p.batch as u64;
        return Launch {
            grid: (tiles.min(sm_count.max(1) as u64) as u32, 1, 1),
            block: (v.threads() as u32, 1, 1),
            smem_bytes: v.smem_bytes() as u32,
            num_m_blocks,
        };
    }
    Launch {
        // x = query block (the kernel reverses it for causal masks so the longest rows start first),
        // y = head, z = batch; check.rs keeps heads and batch within the 65535 limit of y and z.
        grid: (num_m_blocks, p.heads as u32, p.batch as u32),
        block: (v.threads() as u32, 1, 1),
        smem_bytes: v.smem_bytes() as u32,
        num_m_blocks,
    }
}
