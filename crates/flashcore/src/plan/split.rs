//! Split-KV ("flash-decoding"): how many key chunks each tile of the Hopper forward is cut into when
//! its tiles alone cannot fill the GPU (decode: B·Hkv tiles of one query block each).

/// Most splits a call may ask for (the combine kernel's lanes walk them 32 at a time; beyond this
/// the partials' traffic outweighs any gain).
pub const MAX_SPLITS: usize = 128;

/// A split should still stream this many key blocks: below it the fixed cost of a tile (Q load,
/// epilogue, the partial's write and read back) dominates its K/V traffic.
pub const MIN_BLOCKS_PER_SPLIT: usize = 4;

/// The split count for `tiles` tiles of about `blocks_per_tile` key blocks on `sm_count` SMs (one
/// persistent CTA each): none once the tiles fill most of a wave, else as many as keep tiles x
/// splits within one wave (every split runs concurrently, so the call takes one split's time),
/// never cutting a tile below [`MIN_BLOCKS_PER_SPLIT`] blocks.
///
/// Measured on the H100 (bench/NOTES.md, "Inference paths"; decode H32/Hkv8 d128, 8 tiles): 16
/// splits (128 CTAs) beat 15 (120 CTAs, the wave-efficiency rule FlashAttention uses) at every
/// length from 128K to 1M keys (88 / 96 / 100 / 102% of copy bandwidth against 87 / 93 / 97 /
/// 99%), and 32 or 64 (two or more waves) lose 1-8%. B32 (256 tiles) is fastest unsplit.
pub fn num_splits(sm_count: usize, tiles: usize, blocks_per_tile: usize) -> usize {
    let sms = sm_count.max(1);
    if tiles == 0 || tiles as f64 >= 0.8 * sms as f64 {
        return 1;
    }
    let by_blocks = (blocks_per_tile / MIN_BLOCKS_PER_SPLIT).max(1);
    (sms / tiles).min(by_blocks).clamp(1, MAX_SPLITS)
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
        assert_eq!(num_splits(132, 8, 1024), 16);
        // 50 tiles: two splits fill 100 of 132 SMs; a third would start a second wave.
        assert_eq!(num_splits(132, 50, 1024), 2);
    }

    #[test]
    fn short_keys_are_not_cut_below_the_minimum() {
        assert_eq!(num_splits(132, 8, 3), 1);
        assert!(num_splits(132, 8, 16) <= 16 / MIN_BLOCKS_PER_SPLIT);
    }
}
