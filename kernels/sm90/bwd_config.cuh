// Compile-time shape of the Hopper backward (sm90/bwd.cu). Reads BwdTraits (bwd/config.cuh), so
// the prep and post kernels of the same variant pad the fp32 scratch to the same query blocks.
#pragma once
#include "../bwd/config.cuh"
#include "../common/params.cuh"
#include "../common/sections.cuh"

struct Sm90Bwd {
  static constexpr int kHeadDim = BwdTraits::kHeadDim;
  static constexpr int kBlockM = BwdTraits::kBlockM;  // query rows per step
  static constexpr int kBlockN = BwdTraits::kBlockN;  // keys per CTA: 64 per consumer warpgroup
  static constexpr bool kBf16 = BwdTraits::kBf16;
  static constexpr bool kCausal = BwdTraits::kCausal;
  static constexpr bool kLocal = BwdTraits::kLocal;
  static constexpr bool kSoftcap = BwdTraits::kSoftcap;
  static constexpr int kConsumers = kBlockN / 64;
  static constexpr int kThreads = 128 * (kConsumers + 1);  // warpgroup 0 produces
  // Q/dO ring depth: step i+1's tiles land while step i computes.
  static constexpr int kStages = 2;
  // Registers per thread after setmaxnreg. The launch allocates 384 x 168 = 64512; the producer
  // (one thread issuing TMA, no persistent loop) gets 24 and the consumers 240, which hold dK and
  // dV (64 keys x head dim each) across the whole CTA and Sᵀ, dPᵀ (64 keys x block_m) per step:
  // 128 * 24 + 256 * 240 = 64512. Asking for more than the launch allocated hangs the CTA.
  static constexpr int kProducerRegs = 24;
  static constexpr int kConsumerRegs = 240;
  static_assert(128 * kProducerRegs + 128 * kConsumers * kConsumerRegs <= kThreads * ((65536 / kThreads) / 8 * 8),
                "setmaxnreg budget exceeds the registers allocated at launch");

  // Tiles are head-dim blocks of 64 values (128-byte rows: the TMA box and the wgmma 128-byte
  // swizzle atom): [d block][row][64]. d 96 takes two blocks, the second half-filled: TMA zero-fills
  // the columns past the tensor's head dim on loads and drops them on stores (as the forward's).
  static constexpr int kDBlocks = (kHeadDim + 63) / 64;
  static constexpr int kQBytes = kDBlocks * kBlockM * 128;   // Q or dO of one step
  static constexpr int kKVBytes = kDBlocks * kBlockN * 128;  // K or V, loaded once
  static constexpr int kVecBytes = kBlockM * 4;              // lse2 or dsum of one step (fp32)
  // dSᵀ of one step, 16-bit, stored key-major for the dQ GEMM's MN-major A operand:
  // [query block of 64][key][64 queries]. Two buffers, so a warpgroup writes step i+1's while the
  // other may still be reading step i's, with one barrier per step.
  static constexpr int kDsBytes = kBlockN * kBlockM * 2;
  static constexpr int kSmemBase = 2 * kKVBytes + kStages * 2 * kQBytes + 2 * kDsBytes + kStages * 2 * kVecBytes;
  // FLASHCORE_SM90_BWD_DQ_SMEM=1 (BwdTraits::kDqSmem): the step's whole fp32 dQ tile (block_m x
  // head dim, 32 KiB at both head dims) goes to shared memory and one thread adds it to the
  // accumulator with a bulk reduce. Two buffers where they fit (d 128: 227 KiB exactly), so step
  // i+1 writes its tile while step i's reduce may still read; else one (d 64, 196 KiB), reused
  // once the reduce issued a step earlier has read it.
  static constexpr bool kDqSmem = BwdTraits::kDqSmem;
  static constexpr int kDqBytes = kBlockM * kHeadDim * 4;
  // Up to 1023 bytes to align the tiles to 1024, and the 1 + 2 * kStages mbarriers. Mirrored by
  // plan/backward.rs::sm90_bwd_smem_bytes.
  static constexpr int kSmemSlack = 1024 + 64;
  static constexpr bool kTwoDqFit = kSmemBase + 2 * kDqBytes + kSmemSlack <= 227 * 1024;
  static constexpr int kDqBufs = !kDqSmem ? 0 : kTwoDqFit ? 2 : 1;
  static constexpr int kSmemTiles = kSmemBase + kDqBufs * kDqBytes;
  // Main-loop overlap knobs (BwdTraits; sm90/bwd_consumer.cuh has the schedules): the consumer
  // warpgroups take turns issuing their GEMM batches (FLASHCORE_SM90_BWD_PINGPONG=1); step i's dQ
  // GEMM is issued with step i+1's Sᵀ and dPᵀ and stored while they run (FLASHCORE_SM90_BWD_PIPE=1).
  static constexpr bool kPingPong = BwdTraits::kPingPong;
  static constexpr bool kPipe = BwdTraits::kPipe;
  static constexpr bool kDet = BwdTraits::kDet;
  // dQ converted in the kernel (sm90/bwd_convert.cuh) when BwdParams::convert_lag > 0: the host
  // asks for it only in these kernels (plan/backward.rs sm90_bwd_convert).
  static constexpr bool kConvert = kDqSmem && !kPingPong && !kCausal && !kSoftcap && kHeadDim != 96;
  static_assert(!kDet || (kDqSmem && !kPipe && !kPingPong), "the deterministic dQ reduce runs in the plain shared-memory loop");
  static_assert(!kPipe || kDqSmem, "the pipelined loop stores the deferred dQ tile through shared memory");
  // The mbarriers, then three ints (Sm90BwdSmem::cta_info).
  static_assert(8 * (1 + 2 * kStages) + 12 <= kSmemSlack - 1023, "the mbarriers do not fit the slack");
  static constexpr int kSmemBytes = kSmemTiles + kSmemSlack;

  // dQ_i (block_m x head dim) = dS K is split over the consumer warpgroups so each wgmma has M = 64:
  // with 64 query rows, by head-dim halves (N = head dim / 2); with 128, by query halves (N = head dim).
  static constexpr bool kDqSplitRows = kBlockM == 64 * kConsumers;
  // (kDqT: each warpgroup's 64 head dims, the second warpgroup's past column 96 zero at d 96.)
  static constexpr int kDqCols = BwdTraits::kDqT ? 64 : kDqSplitRows ? kHeadDim : kHeadDim / kConsumers;
  // block_m = 80 (d 96 and 128, shared-memory dQ path: FlashAttention-3's non-causal d128 tile, 25%
  // more query rows per step for the same per-step barriers, waits and vector loads): no wgmma has
  // M = 80, so each warpgroup computes dQᵀ for its 64 head dims instead (M = 64 dims, N = block_m
  // queries, K = block_n keys; A = the K tile read MN-major, B = dS stored query-major,
  // [key block of 64][query][64 keys], written with stmatrix.trans). BwdTraits::kDqT. d 96 takes
  // this path at 64 rows too: head-dim halves of 48 would start inside a swizzle atom.
  static constexpr bool kDqT = BwdTraits::kDqT;

  static_assert(kHeadDim == 64 || kHeadDim == 128 || (kHeadDim == 96 && kDqT),
                "sm90 backward: head dim 64 or 128, or 96 with dQ through shared memory");
  static_assert(kBlockN == 128, "sm90 backward: 128 keys per CTA (two consumer warpgroups of 64)");
  static_assert(kBlockM == 64 || kBlockM == 128 || (kBlockM == 80 && kHeadDim >= 96 && kDqSmem),
                "sm90 backward: 64 or 128 query rows per step, or 80 at d96 / d128 with dQ through shared memory");
  static_assert(kDqSplitRows || kBlockM == 64 || kDqT, "dQ split: query halves at 128 rows, head-dim halves at 64 or 80");
  static_assert(kDqCols == 64 || kDqCols == 128, "dQ slice width must be a generated wgmma N of whole d blocks");
  static_assert(kSmemBytes <= 227 * 1024, "sm90 backward tile exceeds shared memory");
};

// L2 budget (MiB) of a section of causal CTAs (Work::sectioned); 0: launch order.
#ifndef FC_SM90_BWD_SECTION_MIB
#define FC_SM90_BWD_SECTION_MIB 16
#endif

namespace sm90::bwd {

// What one CTA does: keys n0 .. n0 + block_n - 1 of kv head hk in batch b, against every query
// block that sees any of them, for its share of the group's query heads: with kv_splits CTAs per
// (key block, kv head, batch) (grid y = kv head * kv_splits + split), split s takes heads
// h0 .. h0 + heads_per_cta - 1. Steps run query block fastest, then query head; producer and
// consumers walk them in the same order.
struct Work {
  int n_block, hk, b, n0, split;
  int h0, m_begin, m_count, steps;
  bool downwards;  // the deterministic mode's walk (BwdTraits::m_at)

  FC_DEVICE explicit Work(const BwdParams& p) {
    int y = blockIdx.y;
    n_block = blockIdx.x;
    b = blockIdx.z;
    if constexpr (Sm90Bwd::kCausal && !Sm90Bwd::kDet && Sm90Bwd::kHeadDim >= 96) sectioned(p, n_block, y, b);
    hk = y / p.kv_splits;
    split = y % p.kv_splits;
    n0 = n_block * Sm90Bwd::kBlockN;
    // Only the query blocks that see some key of the block (BwdTraits::m_begin / m_end).
    m_begin = BwdTraits::m_begin(n0, p.num_m_blocks, p.causal_offset);
    m_count = max(0, BwdTraits::m_end(n0, p.num_m_blocks, p.window_offset_left) - m_begin);
    const int heads_per_cta = p.heads / p.kv_heads / p.kv_splits;
    h0 = hk * (p.heads / p.kv_heads) + split * heads_per_cta;
    steps = m_count * heads_per_cta;
    downwards = p.deterministic != 0;
  }
  // Causal: a key block's work shrinks with its index (key block 0 sees every query block), and
  // the hardware hands out CTAs in launch order (x fastest), i.e. each (kv head, batch) row's key
  // blocks longest first and then the next row: the last rows' long CTAs start near the end and
  // leave most SMs idle while they finish (the forward's causal tail, bench/NOTES.md session 11;
  // scripts/model/causal_tail.py). So the launch index is remapped to go longest first across a
  // section of rows whose query-side traffic (Q, dO in 16 bits and the fp32 dQ accumulator:
  // 8 bytes per element) fits FC_SM90_BWD_SECTION_MIB of L2. Not in the deterministic modes, whose
  // per-query-block turns wait for the previous key block's CTA: started out of order, waiters
  // could hold every SM their predecessors need. d96 and d128: on the H100 (bench/NOTES.md, session
  // 11) causal D128 S4K +3.5%, GQA 32/8 S2K +4.6%, S16K level (one row per section), S1K -0.7%
  // (so from 16 key blocks); at d64 S1K causal it lost 4.5% and S4K 0.8%; d96 S4K causal +2.5%
  // (session 15).
  static FC_DEVICE void sectioned(const BwdParams& p, int& x, int& y, int& z) {
    if constexpr (FC_SM90_BWD_SECTION_MIB == 0) return;
    if (p.deterministic != 0) return;  // the red.global path's deterministic turns (bwd_consumer.cuh)
    const int nx = (int)gridDim.x, ny = (int)gridDim.y, rows = ny * (int)gridDim.z;
    if (nx < 16) return;  // short rows: S1K causal (8 key blocks) lost 0.7% with sections
    const long long row_bytes =
        8ll * (p.heads / p.kv_heads / p.kv_splits) * p.num_m_blocks * Sm90Bwd::kBlockM * Sm90Bwd::kHeadDim;
    const int sec = (int)min((long long)rows, max(1ll, (long long)FC_SM90_BWD_SECTION_MIB * (1 << 20) / row_bytes));
    int row;
    section_order(x + nx * (y + ny * z), nx, rows, sec, row, x);
    y = row % ny;
    z = row / ny;
  }
  // This CTA's grid row (kv head x split, batch): what the in-kernel dQ conversion counts
  // (sm90/bwd_convert.cuh).
  FC_DEVICE int grid_row(const BwdParams& p) const { return hk * p.kv_splits + split + (int)gridDim.y * b; }
  // First row of the query block at position mi of the walk.
  FC_DEVICE int m0(int mi) const { return BwdTraits::m_at(mi, m_begin, m_count, downwards) * Sm90Bwd::kBlockM; }
};

}  // namespace sm90::bwd
