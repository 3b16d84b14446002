// Compile-time shape of the backward kernels (bwd/prep.cu, sm80/bwd.cu, bwd/post.cu). Reads Traits
// from common/config.cuh, whose macros mean something else here: a CTA owns kBlockN keys (16 per
// warp, the M of the mma) and walks query blocks of kBlockM rows.
#pragma once
#include "../common/config.cuh"

// Hopper backward (sm90/bwd.cu) only: dQ goes through shared memory and a bulk reduce-add instead
// of red.global from registers, and the fp32 accumulator's rows are stored with their 8-float
// chunks swizzled (chunk c of row r at c ^ (r % 4)), which bwd/post.cu undoes. 0 or 1.
#ifndef FC_SM90_BWD_DQ_SMEM
#define FC_SM90_BWD_DQ_SMEM 0
#endif
// Hopper backward only, overlap knobs of its main loop (default off, sm90/bwd_consumer.cuh):
// the consumer warpgroups take turns issuing GEMMs (ping-pong), and step i's dQ GEMM is issued
// with step i+1's Sᵀ and dPᵀ (pipe; needs FC_SM90_BWD_DQ_SMEM). 0 or 1 each.
#ifndef FC_SM90_BWD_PINGPONG
#define FC_SM90_BWD_PINGPONG 0
#endif
#ifndef FC_SM90_BWD_PIPE
#define FC_SM90_BWD_PIPE 0
#endif
// The deterministic mode on the Hopper shared-memory dQ path: each step's bulk reduce waits for its
// turn in the query block (plan/backward.rs `bwd_deterministic`).
#ifndef FC_SM90_BWD_DET
#define FC_SM90_BWD_DET 0
#endif

struct BwdTraits {
  static constexpr int kHeadDim = Traits::kHeadDim;
  static constexpr int kBlockM = Traits::kBlockM;  // query rows per mainloop step
  static constexpr int kBlockN = Traits::kBlockN;  // keys per CTA
  static constexpr bool kBf16 = Traits::kBf16;
  static constexpr bool kCausal = Traits::kCausal;
  static constexpr bool kLocal = Traits::kLocal;  // the sliding window's lower bound (FC_LOCAL)
  static constexpr bool kSoftcap = Traits::kSoftcap;  // tanh logit cap (FC_SOFTCAP): dS carries 1 − tanh²
  static constexpr int kMinBlocksPerSm = Traits::kMinBlocksPerSm;
  // Q/dO ring depth (with LSE and D of the block): step i+1 loads while step i computes.
  static constexpr int kStages = Traits::kStages;
  static constexpr bool kDqSmem = FC_SM90_BWD_DQ_SMEM != 0;
  static constexpr bool kPingPong = FC_SM90_BWD_PINGPONG != 0;
  static constexpr bool kPipe = FC_SM90_BWD_PIPE != 0;
  static constexpr bool kDet = FC_SM90_BWD_DET != 0;
  // The Hopper backward's 80-row tile and its d 96 (sm90/bwd_config.cuh Sm90Bwd::kDqT): dQᵀ per
  // warpgroup, and the accumulator's chunks swizzled by (row / 2) % 4 instead of row % 4 (dq_chunk).
  static constexpr bool kDqT = kDqSmem && (kBlockM == 80 || kHeadDim == 96);
  static constexpr int kWarps = kBlockN / 16;
  static constexpr int kThreads = kWarps * 32;
  // dQ = dS K is split over the warps as kRowGroups (16 query rows each) x kColSplits (head-dim
  // slices of kDqCols columns, a multiple of 8), so every warp holds an equal share of the dQ
  // accumulator.
  static constexpr int kRowGroups = kBlockM / 16;
  static constexpr int kColSplits = kWarps / kRowGroups;
  static constexpr int kDqCols = kHeadDim / kColSplits;

  // The swizzled dQ accumulator XORs the chunk index with row % 4: every row needs 4 chunks.
  static_assert(!kDqSmem || kHeadDim % 32 == 0, "the swizzled dQ accumulator needs rows of whole 4-chunk groups");
  // Where chunk `chunk` (8 floats) of a row of the fp32 dQ accumulator is stored. Rows of one
  // query block are one contiguous tile the Hopper kernel adds with a single bulk reduce from a
  // shared-memory copy of the same layout; the swizzle spreads the 4 rows one half-warp writes
  // over 4 different 32-byte bank groups. Query blocks start at multiples of 4 rows, so the
  // accumulator's row index works as the tile's.
  // kDqT: a thread of the transposed dQ holds 8 head dims (one chunk) of query rows 2t and 2t + 1 of
  // each 8-row group, so the quad's 4 lanes write rows 2t (+ 1) and XOR with (row / 2) % 4 = t
  // keeps them on 4 different bank groups. Query blocks start at multiples of 8 rows there.
  static FC_DEVICE int dq_chunk(int chunk, int row) {
    return !kDqSmem ? chunk : kDqT ? chunk ^ ((row >> 1) & 3) : chunk ^ (row & 3);
  }

  // The query blocks [m_begin, m_end) that see some key of the key block starting at n0 (kBlockN
  // keys): query i sees key j only if j <= i + causal_offset (kCausal; the window's right edge) and
  // j >= i + window_offset_left (kLocal). Both ends only grow with n0, so the key blocks that visit
  // query block m are a contiguous run starting at first_n_block(m). m_end <= m_begin: no work.
  static FC_DEVICE int m_begin(int n0, int num_m_blocks, int causal_offset) {
    return kCausal ? min(num_m_blocks, max(0, n0 - causal_offset) / kBlockM) : 0;
  }
  static FC_DEVICE int m_end(int n0, int num_m_blocks, int window_offset_left) {
    if (!kLocal) return num_m_blocks;
    const int last_query = n0 + kBlockN - 1 - window_offset_left;  // the last that sees key n0 + kBlockN - 1
    return last_query < 0 ? 0 : min(num_m_blocks, last_query / kBlockM + 1);
  }
  // The query block a CTA visits at position mi of its walk over [m_begin, m_begin + m_count).
  // The deterministic mode walks it downwards: query block m takes its key blocks' dQ adds in
  // ascending key-block order, and every CTA then reaches m at the same position of its walk
  // (all walks start at the last query block, or later for a window's later key blocks), so each
  // CTA runs one add behind the previous key block's instead of idling through the steps that
  // CTA has before m (upwards, key block n of a causal row waits for m_begin(n) - m_begin(n - 1)
  // more steps of its predecessor each: the CTAs of a row sat on their SMs through 2x the work).
  static FC_DEVICE int m_at(int mi, int m_begin, int m_count, bool downwards) {
    return downwards ? m_begin + m_count - 1 - mi : m_begin + mi;
  }
  // The first key block whose range holds query block m: the smallest n with m_end(n * kBlockN) > m,
  // i.e. n * kBlockN >= m * kBlockM + window_offset_left - kBlockN + 1. The deterministic mode's
  // turn of key block n in query block m is n - first_n_block(m): it must match the walk exactly,
  // or a CTA waits for a turn that never comes.
  static FC_DEVICE int first_n_block(int m, int window_offset_left) {
    if (!kLocal) return 0;
    const int x = m * kBlockM + window_offset_left - kBlockN + 1;
    return x <= 0 ? 0 : (x + kBlockN - 1) / kBlockN;
  }
  // The last key block whose range holds query block m (-1 for none): the largest n < num_n_blocks
  // with m_begin(n * kBlockN) <= m, i.e. n * kBlockN <= causal_offset + (m + 1) * kBlockM - 1. So the
  // key blocks visiting m are first_n_block(m) .. last_n_block(m) (scripts/model/bwd_convert_owner.py
  // checks this against the walk's m_begin / m_end).
  static FC_DEVICE int last_n_block(int m, int num_n_blocks, int causal_offset) {
    if (!kCausal) return num_n_blocks - 1;
    const int x = causal_offset + (m + 1) * kBlockM - 1;
    return x < 0 ? -1 : min(num_n_blocks - 1, x / kBlockN);
  }
  static FC_DEVICE int n_blocks_visiting(int m, int num_n_blocks, int causal_offset, int window_offset_left) {
    return max(0, last_n_block(m, num_n_blocks, causal_offset) - first_n_block(m, window_offset_left) + 1);
  }
  // The deterministic mode's turn of key block n_block in query block m: the count of earlier key
  // blocks that visit m (their CTAs were launched earlier, key block fastest).
  static FC_DEVICE u32 dq_turn(int n_block, int m, int window_offset_left) {
    return (u32)(n_block - first_n_block(m, window_offset_left));
  }

  static_assert(kStages == 2, "the backward's Q/dO ring has two stages");
  static_assert(kHeadDim <= 128,
                "backward head dim must be at most 128: dK and dV accumulators of 16 keys x head dim per warp "
                "take head-dim registers per thread");
  static_assert(kWarps >= 1 && kWarps <= 16, "block_n must be 16 * warps, at most 16 warps");
  static_assert(kBlockM <= 128, "block_m must be at most 128");
  static_assert(!kDqT || kBlockM % 8 == 0, "kDqT's swizzle needs query blocks at multiples of 8 rows");
  // (kRowGroups and kColSplits, the sm80 kernel's dQ split, are checked in sm80/bwd.cu: the prep and
  // post kernels of the Hopper backward's 80-row tile share this header.)
};
