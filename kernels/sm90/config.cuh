// Compile-time shape of the Hopper forward kernel (reads Traits from common/config.cuh).
#pragma once
#include "../common/config.cuh"

struct Sm90 {
  static constexpr int kHeadDim = Traits::kHeadDim;
  static constexpr int kBlockM = Traits::kBlockM;  // 64 query rows per consumer warpgroup
  static constexpr int kBlockN = Traits::kBlockN;
  static constexpr int kStages = Traits::kStages;
  static constexpr int kConsumers = kBlockM / 64;
  static constexpr int kThreads = 128 * (kConsumers + 1);  // warpgroup 0 produces
  // Registers per thread after setmaxnreg: the producer needs few, consumers hold S, O and P.
  // setmaxnreg.inc waits until the CTA's own warpgroups have released enough: the budget is what
  // the launch allocated, threads x the entry cap (168 for 384 threads, 128 for 512), not the
  // whole register file. 384 threads: 64512 >= 128 * 32 + 256 * 232; 512 threads: 65536 =
  // 128 * 32 + 384 * 160. (240 for two consumers would need the producer at 24, which spills the
  // persistent scheduler loop; asking for more than the budget hangs the CTA.)
  // The inference paths' producer (varlen lookups, a TMA box per page) needs more than 32: 40 still
  // fits beside two consumers at 232 (128 * 40 + 256 * 232 = 64512).
  // Several CTAs per SM (the tile's occupancy, FC_MIN_BLOCKS: a 64-row tile's lone consumer beside
  // another CTA's, each walking its own tiles and K/V ring): the launch then allocates
  // 65536 / (threads x CTAs) registers per thread, and the consumer takes what the producer leaves
  // of its CTA's share (one consumer at two CTAs: 128 * 32 + 128 * 224 = 256 * 128).
  static constexpr int kCtasPerSm = Traits::kMinBlocksPerSm;
  static constexpr int kLaunchRegsRaw = 65536 / (kThreads * kCtasPerSm);
  static constexpr int kLaunchRegs = (kLaunchRegsRaw < 255 ? kLaunchRegsRaw : 255) / 8 * 8;
  static constexpr int kProducerRegs = Traits::kInfer && (kConsumers == 2 || kCtasPerSm > 1) ? 40 : 32;
  static constexpr int kConsumerRegs =
      kCtasPerSm > 1 ? (kThreads * kLaunchRegs - 128 * kProducerRegs) / (128 * kConsumers) / 8 * 8
                     : kConsumers == 2 ? 232 : 160;
  static_assert(128 * kProducerRegs + 128 * kConsumers * kConsumerRegs <= kThreads * kLaunchRegs,
                "setmaxnreg budget exceeds the registers allocated at launch");
  static_assert(kConsumerRegs >= 128 && kConsumerRegs <= 240, "consumer registers: 128 to 240");
  // Tiles are stored as head-dim blocks of 64 values (128 bytes per row, the TMA box and the
  // wgmma 128-byte swizzle atom width): [d block][row][64].
  // d 96 takes two blocks, the second half-filled: TMA zero-fills the columns past the tensor's
  // head dim on loads and drops them on stores, and the GEMMs stop at column 96.
  // FP8 (e4m3, one byte per value): a 128-byte row holds 128 head-dim values, so d 64 takes one
  // half-filled block like d 96 does in 16 bits.
  static constexpr bool kFp8 = Traits::kFp8;
  static constexpr int kDBlockElems = kFp8 ? 128 : 64;
  // FP8 folds the descales into scale_log2, which softcap's tanh of the raw score would need first;
  // and its transposed V has no paged / varlen loads. The planner never asks for these.
  static_assert(!(kFp8 && (Traits::kSoftcap || Traits::kLocal || Traits::kInfer)),
                "FP8 forward: no softcap, window or inference paths");
  static constexpr int kDBlocks = (kHeadDim + kDBlockElems - 1) / kDBlockElems;
  static constexpr int kQBytes = kDBlocks * kBlockM * 128;  // one Q slot
  // Q slots: with two, the producer loads tile t+1's Q (and takes its index from the global
  // counter) while the consumers still work on tile t, so no tile starts by waiting for an L2
  // round trip and a TMA load. d256 keeps one: a second 64 KiB Q does not fit beside its ring.
#ifndef FC_SM90_Q_STAGES
#define FC_SM90_Q_STAGES (FC_HEAD_DIM <= 128 ? 2 : 1)
#endif
  static constexpr int kQStages = FC_SM90_Q_STAGES;
  static_assert(kQStages == 1 || kQStages == 2, "one or two Q slots");
  static constexpr int kKBytes = kDBlocks * kBlockN * 128;  // K, one stage
  // The softmax's row sums from the tensor cores: P·V runs at N = head dim + 8 on a B operand
  // whose last 8 columns are all ones, so the sums of P come out in 8 more accumulator columns
  // (already summed over the quad, and rescaled with O) instead of one FADD per score. Where the
  // softmax's instructions limit the kernel (16-bit d64) that trades 8 / (2 x head dim) more tensor
  // work for a fifth of the softmax's instructions. The sums are of P as rounded for P·V, so the
  // LSE would carry that rounding: the planner builds it for calls without an LSE (plan/variant.rs
  // Variant::with_sum_mma), 16-bit d64 (FP8 d64 / d128 on request: less accurate there; d256 + 8
  // is over wgmma's N; d128's 16-bit ring has no room for the ones).
#ifndef FC_SM90_SUM_MMA
#define FC_SM90_SUM_MMA 0
#endif
  static constexpr bool kSumMma = FC_SM90_SUM_MMA != 0;
  static_assert(!kSumMma || (kFp8 ? kHeadDim <= 128 : kHeadDim == 64), "row sums by MMA: FP8 d <= 128, 16-bit d64");
  // V, one stage. FP8 wgmma reads B K-major only, so the FP8 path loads V transposed ([d][key],
  // written by fp8_vt.cu): key blocks of 128 (one 128-byte row per head-dim index); with kSumMma
  // 8 more rows of ones follow (written once at kernel start; the V loads never touch them).
  static constexpr int kOnesRowsBytes = kFp8 && kSumMma ? 8 * 128 : 0;
  static constexpr int kVLoadBytes = kFp8 ? kBlockN * kHeadDim : kKBytes;  // what a stage's V load brings
  static constexpr int kVBytes = kVLoadBytes + kOnesRowsBytes;
  // 16-bit V is MN-major (d contiguous): B's columns past the head dim are the next 64-wide block,
  // at the descriptor's leading byte offset from the stage; each stage points that offset at one
  // shared block of ones (block_n rows of 128 bytes) after the ring.
  static constexpr int kOnesBytes = !kFp8 && kSumMma ? kBlockN * 128 : 0;
  static constexpr int kKVBytes = kKBytes + kVBytes;  // one stage
  // Epilogue: O staged in shared memory (one 64-row buffer per consumer warpgroup, the TMA box
  // layout) and written by TMA stores, instead of 4-byte stores from registers.
#ifndef FC_SM90_TMA_STORE
#define FC_SM90_TMA_STORE 0
#endif
  // Not on the inference paths: a varlen tile's box would spill into the next sequence's rows, and
  // split partials are fp32.
  static constexpr bool kTmaStore = FC_SM90_TMA_STORE != 0 && !Traits::kInfer;
  static constexpr int kOBytesPerWg = (kHeadDim + 63) / 64 * 64 * 128;  // 16-bit output
  static constexpr int kOBytes = kTmaStore ? kConsumers * kOBytesPerWg : 0;
  // FP8: P·V reads P from shared memory (one 64 x block_n e4m3 tile per consumer warpgroup,
  // written with stmatrix after the softmax) instead of registers. P then holds no registers while
  // P·V is in flight, so the intra-warpgroup overlap needs only the serial loop's registers (S, P
  // and O at once are over 232 at d256; bench/NOTES.md, session 19).
#ifndef FC_SM90_P_SMEM
#define FC_SM90_P_SMEM 0
#endif
  static constexpr bool kPSmem = FC_SM90_P_SMEM != 0 && kFp8 && !kSumMma;
  static constexpr int kPBytesPerWg = 64 * kBlockN;  // [key block of 128][64 rows][128 B]
  static constexpr int kPBytes = kPSmem ? kConsumers * kPBytesPerWg : 0;
  // FP8: V transposed in the kernel instead of by the fp8_vt.cu pass (which reads and writes V
  // once more in HBM and needs a V-sized scratch per call): the producer loads V as it loads K
  // ([d block][key][128 B], 128-byte swizzle) into a staging ring, and the producer warpgroup's
  // warps 1-3 transpose each block into the stage's [d][key] tile with ldmatrix.trans, byte
  // permutes and stmatrix (sm90/transpose.cuh). Staging is a K-sized tile per slot.
#ifndef FC_SM90_VT_SMEM
#define FC_SM90_VT_SMEM 0
#endif
  static constexpr bool kVtSmem = FC_SM90_VT_SMEM != 0 && kFp8;
  static constexpr int kVsSlots = 2;  // the staging ring's depth, where it exists
  static constexpr int kVsStages = kVtSmem ? kVsSlots : 0;
  static constexpr int kVsBytes = kVsStages * kKBytes;
  static constexpr int kTransposeWarps = 3;
  static constexpr int kSmemTiles = kQStages * kQBytes + kStages * kKVBytes + kOnesBytes + kOBytes + kPBytes + kVsBytes;
  // + up to 1023 bytes to align the tiles to 1024, + the mbarriers (2 * kQStages + 4 * kStages of
  // 8 bytes, and 2 * kVsStages), the published tiles (smem.cuh PublishedTile) and the clusters'
  // pair tickets.
  static constexpr int kSmemBytes = kSmemTiles + 2048;
  // Issue the next Q·Kᵀ and the previous P·V together, so softmax runs while the tensor cores work.
  // Measured on the H100 (bench/NOTES.md): +9% at d128 S4K (588 -> 644 TF/s); at d64 it pays only
  // with three consumers and ping-pong among them (+1.5-2%), and loses on the two-consumer d64 tile
  // (128x128, causal with few keys), and on the H200 on the 64x64 tile at three CTAs per SM that
  // replaced it there (S512 causal 259 against 271 TF/s, S1K causal 340 against 348; session 26).
  // Ping-pong (FlashAttention-3): the consumer warpgroups take turns issuing their GEMMs (in a
  // cycle, for two or three), so one warpgroup's softmax runs while the others' GEMMs occupy the
  // tensor cores. Without overlap each Q·Kᵀ and each P·V issue is a turn.
  // FP8 (bench/NOTES.md "FP8 forward"): ping-pong off except on d128's two-consumer tile (short
  // causal rows): +3-8% at d64 / d128 (three consumers) / d256 on the H100. 16-bit d256: off since
  // its overlapped loop keeps P allocated through the softmax (consumer.cuh kKeepP): 664 -> 683
  // TF/s at S4K, causal 569 -> 573 (session 8). The same for causal rows on three consumers (d64):
  // S4K causal 432 -> 437, S16K causal 520 -> 527.
  // Clusters of two CTAs on query blocks 2p and 2p + 1 of one head: each CTA's producer loads half
  // of every K and V block (alternate 64-column d blocks) and multicasts it into both CTAs, so the
  // pair reads each K/V block from L2 once instead of twice. A timing probe that skipped the K/V
  // reloads altogether ran d128 S4K 4.6%, S16K 10%, d256 8% faster; the clusters recover part of
  // that where the traffic dominates: d256 S4K +1-4%, d128 from 32K keys +2-3%, level at 4K-16K,
  // -2 to -10% at 1K, where a pair waiting for its slower CTA costs more (bench/NOTES.md, session
  // 9). The planner asks for them at d256 and from 32K keys (plan/variant.rs).
  // Dense tiles only: both CTAs stream the same key blocks in step (host: an even number of query
  // blocks per head, no GQA packing, plan/variant.rs); with a causal mask the pair streams its
  // longer tile's blocks and the other CTA releases the extra ones unread. The leader CTA takes
  // each pair's ticket from the global counter and hands it to the peer (producer.cuh).
#ifndef FC_SM90_CLUSTER
#define FC_SM90_CLUSTER 1
#endif
  static constexpr int kCluster = FC_SM90_CLUSTER;
  static_assert(kCluster == 1 || (kCluster == 2 && !kFp8 && !Traits::kInfer && !Traits::kLocal && kDBlocks % 2 == 0),
                "sm90 clusters: two CTAs, dense 16-bit tiles (no window) with an even number of d blocks");
  // Each dense non-causal tile starts its key loop at a block spread by its query block (and
  // wraps), so the CTAs in flight on one head do not all read the same K/V lines at once. On the
  // H100 (bench/NOTES.md, session 9): d256 S4K +1.4% alone, +2% with clusters; d128 -1 to -3%
  // (S1K to 32K), so on for d256 only. FC_SM90_KV_ROTATE=0|1 forces it.
#ifdef FC_SM90_KV_ROTATE
  static constexpr bool kRotateOn = FC_SM90_KV_ROTATE != 0;
#else
  static constexpr bool kRotateOn = kHeadDim == 256;
#endif
  static constexpr bool kRotate = kRotateOn && !kFp8 && !Traits::kInfer && !Traits::kCausal && !Traits::kLocal;
  // Warpgroups whose 64 rows are all past the sequence's end skip the main loop
  // (consumer.cuh Mainloop::run_idle): every d64 row on the 192-row tile has such a last query
  // block. On the H200 (bench/NOTES.md session 26): d64 S512 +2.7%, S1K +3.9%, S4K causal +3.2%,
  // the seed's H8 row +2.1%. Dense 16-bit d64 only, as measured: other head dims meet such a block
  // only on ragged lengths (their 128-row tiles), and the window and inference builds keep
  // computing those rows. (Handing the partial blocks out after the full ones as well lost 1.5-3%
  // of the gain.) FC_SM90_IDLE_WG=0|1 forces it off or on (on: any dense 16-bit or FP8 variant).
#ifdef FC_SM90_IDLE_WG
  static constexpr bool kIdleWg = FC_SM90_IDLE_WG != 0 && !Traits::kInfer && !Traits::kLocal;
#else
  static constexpr bool kIdleWg = kHeadDim == 64 && !kFp8 && !Traits::kInfer && !Traits::kLocal;
#endif
#ifdef FC_SM90_PINGPONG
  static constexpr bool kPingPong = FC_SM90_PINGPONG != 0 && kConsumers >= 2;
#else
  static constexpr bool kPingPong = Traits::kFp8 ? (kConsumers == 2 && (kHeadDim == 128 || (kHeadDim == 256 && kPSmem)))
                                                 : (kConsumers == 2 && kHeadDim >= 96 && kHeadDim < 256) ||
                                                       (kConsumers == 3 && !Traits::kCausal);
#endif
#ifdef FC_SM90_OVERLAP
  static constexpr bool kOverlap = FC_SM90_OVERLAP != 0;
#else
  // FP8: d256's overlapped loop holds S (64), P (16) and O (128) at once, over 232 registers
  // (spills), so it runs serial unless P comes from shared memory (kPSmem: the default without a
  // causal mask, overlapped with ping-pong, +6% at S4K on the H100; bench/NOTES.md, session 19);
  // d128 on three consumers runs serial too (160 registers; and faster: 855 against 742 TF/s at
  // S4K; with P from shared memory and overlapped, 842 against 886: the P stores, fence and
  // warpgroup barrier cost more than the overlap gives), and so does d128 on 256-key blocks (S
  // 128 + P 32 + O 64 registers; overlapped, a second S spills); d64 and d128's 128x128 tile
  // overlap.
  static constexpr bool kOverlap = Traits::kFp8 ? (kHeadDim == 64 || (kHeadDim == 128 && kConsumers == 2 && kBlockN == 128) ||
                                                   (kHeadDim == 256 && kPSmem))
                                                : (kHeadDim >= 96 || kConsumers == 3);
#endif
  static_assert(kHeadDim == 64 || kHeadDim == 96 || kHeadDim == 128 || kHeadDim == 256,
                "sm90 path: head dim 64, 96, 128 or 256 (generated wgmma N)");
  static_assert(kBlockM == 64 || kBlockM == 128 || kBlockM == 192, "sm90 path: 1 to 3 consumer warpgroups");
  static_assert(kBlockN % 16 == 0 && kBlockN >= 64 && kBlockN <= 256, "sm90 path: block_n is a generated wgmma N");
  static_assert(kSmemBytes <= 227 * 1024, "sm90 tile config exceeds shared memory");
  // Each resident CTA also takes 1 KiB of the SM's 228 KiB.
  static_assert(kCtasPerSm * (kSmemBytes + 1024) <= 228 * 1024, "sm90 tile: its CTAs per SM exceed shared memory");
  // FP8: a key block is one or two 128-byte rows of the transposed V (one TMA box and one swizzle
  // atom each); block-quantized k / v have a descale per 128 keys, which the host pairs with
  // block_n 128 only (plan/tiles.rs), and the MMA row sums' ones sit after a single atom.
  static_assert(!kFp8 || ((kBlockN == 128 || kBlockN == 256) && kHeadDim % 32 == 0),
                "FP8: block_n 128 or 256, head dim in k32 steps");
  static_assert(!kFp8 || !kSumMma || kBlockN == 128, "FP8 row sums by MMA: block_n 128");
  static_assert(!kFp8 || !kTmaStore, "FP8: the TMA-store epilogue assumes 16-bit d blocks of the inputs");
  // The transposer's steps are 32 keys by 16 head-dim values; its 128-key boxes match the stage's
  // transposed layout (one TMA box each when the fp8_vt.cu pass wrote it).
  static_assert(!kVtSmem || (kHeadDim % 16 == 0 && kBlockN % 128 == 0), "in-kernel V transpose: 32-key by 16-value steps");
};
