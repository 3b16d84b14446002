//! Split-KV ("flash-decoding"): how many key chunks each tile of the Hopper forward is cut into when
//! its tiles alone cannot fill the GPU (decode: B·Hkv tiles of one query block each).

/// Most splits a call may ask for (the combine kernel's lanes walk them 32 at a time; beyond this
/// the partials' traffic outweighs any gain).
pub const MAX_SPLITS: usize = 128;

/// A split should still stream this many key blocks: below it the fixed cost of a tile (Q load,
/// epilogue, the partial's write and read back) dominates its K/V traffic.
pub const MIN_BLOCKS_PER_SPLIT: usize = 4;

/// The split count for `tiles` tiles of about `blocks_per_tile` key blocks on `sm_count` SMs (one
/// persistent CTA each). Wave efficiency of s splits is w / ceil(w) with w = tiles·s / SMs; the rule
/// takes the smallest s within 85% of the best efficiency (FlashAttention's rule of thumb), never
/// cutting a tile below [`MIN_BLOCKS_PER_SPLIT`] blocks, and no split at all once the tiles fill
/// most of a wave. H100 measurements behind it: bench/NOTES.md, "Inference paths".
pub fn num_splits(sm_count: usize, tiles: usize, blocks_per_tile: usize) -> usize {
    let sms = sm_count.max(1) as f64;
    if tiles == 0 || tiles as f64 >= 0.8 * sms {
        return 1;
    }
    let max = (blocks_per_tile / MIN_BLOCKS_PER_SPLIT).clamp(1, MAX_SPLITS);
    let eff = |s: usize| {
        let w = (tiles * s) as f64 / sms;
        w / w.ceil()
    };
    let best = (1..=max).map(eff).fold(0.0, f64::max);
    (1..=max).find(|&s| eff(s) >= 0.85 * best).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_grids_do_not_split() {
        assert_eq!(num_splits(132, 256, 256), 1);
        assert_eq!(num_splits(132, 132, 1024), 1);
    }

    #[test]
    fn single_sequence_decode_fills_the_gpu() {
        // B = 1, Hkv = 8, 128K keys of 128-key blocks.
        let s = num_splits(132, 8, 1024);
        assert!((14..=17).contains(&s), "{s}");
        assert!(8 * s <= 136);
    }

    #[test]
    fn short_keys_are_not_cut_below_the_minimum() {
        assert_eq!(num_splits(132, 8, 3), 1);
        assert!(num_splits(132, 8, 16) <= 16 / MIN_BLOCKS_PER_SPLIT);
    }
}
