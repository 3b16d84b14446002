// Forward attention for Hopper (sm_90a): a persistent kernel with a producer warpgroup issuing TMA
// loads and consumer warpgroups of 64 query rows each running wgmma; mbarrier-synchronised Q and
// K/V stage rings; setmaxnreg gives the consumers the registers. Roles only here; the stages live
// in scheduler / producer / consumer / epilogue.cuh.
#include "../attn/softmax.cuh"
#include "../common/params.cuh"
#include "../common/ptx/griddep.cuh"
#include "../sm80/epilogue.cuh"
#include "config.cuh"
#include "consumer.cuh"
#include "epilogue.cuh"
#include "producer.cuh"
#include "scheduler.cuh"
#include "smem.cuh"
#include "transpose.cuh"

// FP8: this warp's descale factors (its 16 rows are one head and one 128-row q block). q's and,
// unless k is block-quantized, k's go into the softmax scale; v's multiplies the output (per key
// block: the mainloop rescales O between blocks, sm90/consumer.cuh).
FC_DEVICE void fp8_descales(const FwdParams& f, const sm90::Tile& x, int head, int row0, float& sl2, float& vd,
                            const float*& kd_blk, const float*& vd_blk) {
  const float* qd = reinterpret_cast<const float*>(f.q_descale);
  const float* kd = reinterpret_cast<const float*>(f.k_descale) + x.b * f.k_descale_stride_b + x.hk * f.k_descale_stride_h;
  const float* vdp = reinterpret_cast<const float*>(f.v_descale);
  // Rows past seqlen_q (the last tile's) take the last block's factor: block-quantized q has only
  // ceil(seqlen_q / 128) of them (their output is never stored).
  const int q_blk = min(row0, f.seqlen_q - 1) / 128;
  sl2 *= qd[x.b * f.q_descale_stride_b + head * f.q_descale_stride_h + q_blk * f.q_descale_stride_blk];
  if (f.k_descale_stride_blk != 0) {
    kd_blk = kd;
  } else {
    sl2 *= kd[0];
  }
  vdp += x.b * f.v_descale_stride_b + x.hk * f.v_descale_stride_h;
  if (f.v_descale_stride_blk != 0) {
    vd_blk = vdp;
  } else {
    vd = vdp[0];
  }
}

FC_EXPORT_SMEM_BYTES(Sm90::kSmemBytes);

#if FC_SM90_CLUSTER == 2
#define FC_SM90_CLUSTER_DIMS __cluster_dims__(2, 1, 1)
#else
#define FC_SM90_CLUSTER_DIMS
#endif

extern "C" __global__ void FC_SM90_CLUSTER_DIMS __launch_bounds__(Sm90::kThreads, Sm90::kCtasPerSm)
    fc_fwd_sm90(const __grid_constant__ Sm90Params p) {
  // A split call's combine kernel is launched as this one's dependent (runtime/ext.rs) and waits
  // for it; letting it start now puts its CTAs on the SMs this grid leaves free.
  ptx::launch_dependents();
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const Sm90Smem sm(smem_raw);
  const FwdParams& f = p.base;
  const int warpgroup = threadIdx.x / 128;

  if (threadIdx.x == 0) {
    for (int s = 0; s < Sm90::kQStages; ++s) {
      ptx::mbar_init(sm.q_full(s), 1);
      ptx::mbar_init(sm.q_empty(s), 128 * Sm90::kConsumers);
    }
    // A stage is refilled once every consumer that reads it is done: each consumer thread, or with
    // clusters one thread per warp of both CTAs (the producers write into both, consumer.cuh).
    const int releases = Sm90::kCluster == 1 ? 128 * Sm90::kConsumers : 2 * 4 * Sm90::kConsumers;
    for (int s = 0; Sm90::kCluster > 1 && s < Sm90::kQStages; ++s) {
      ptx::mbar_init(sm.pair_full(s), 1);
      ptx::mbar_init(sm.pair_empty(s), 1);
    }
    for (int s = 0; s < Sm90::kStages; ++s) {
      ptx::mbar_init(sm.k_full(s), 1);
      // FP8 kVtSmem: one arrival per transposer warp (transpose.cuh) instead of the TMA's bytes.
      ptx::mbar_init(sm.v_full(s), Sm90::kVtSmem ? Sm90::kTransposeWarps : 1);
      ptx::mbar_init(sm.k_empty(s), releases);
      ptx::mbar_init(sm.v_empty(s), releases);
    }
    for (int i = 0; i < Sm90::kVsStages; ++i) {
      ptx::mbar_init(sm.vs_full(i), 1);
      ptx::mbar_init(sm.vs_empty(i), Sm90::kTransposeWarps);
    }
    if constexpr (Sm90::kVtSmem) ptx::st_shared_u32(sm.vs_stop(), 0u);
    ptx::fence_barrier_init();
  }
  if constexpr (Sm90::kSumMma) {
    // The all-ones columns of P·V's B operand (config.cuh kSumMma): written once here, read by
    // wgmma (the async proxy) after the barrier below.
    constexpr u32 kOne = Sm90::kFp8 ? 0x38383838u : Traits::kBf16 ? 0x3F803F80u : 0x3C003C00u;
    const u32 base = ptx::smem_addr(smem_raw);
    for (int s = 0; s < (Sm90::kFp8 ? Sm90::kStages : 1); ++s) {
      const u32 at = Sm90::kFp8 ? sm.ones_rows(s) : sm.ones;
      u32* w = reinterpret_cast<u32*>(smem_raw + (at - base));
      constexpr int kWords = (Sm90::kFp8 ? Sm90::kOnesRowsBytes : Sm90::kOnesBytes) / 4;
      for (int i = threadIdx.x; i < kWords; i += Sm90::kThreads) w[i] = kOne;
    }
    ptx::fence_proxy_async_smem();
  }
  // With clusters the peer's producer and consumers use this CTA's barriers: both CTAs' must be
  // initialised first.
  if constexpr (Sm90::kCluster > 1) {
    ptx::cluster_sync();
  } else {
    __syncthreads();
  }

  if (warpgroup == 0) {
    ptx::setmaxnreg_dec<Sm90::kProducerRegs>();
    // Only the producer decodes tiles: the consumers read them from shared memory (PublishedTile).
    if (threadIdx.x == 0) sm90::producer::run(p, sm, sm90::Scheduler(p));
    // FP8 kVtSmem: warps 1-3 of this warpgroup transpose V.
    if (Sm90::kVtSmem && threadIdx.x >= 32) sm90::transpose::run(Sm90Smem(smem_raw), threadIdx.x / 32 - 1, threadIdx.x % 32);
    return;
  }
  ptx::setmaxnreg_inc<Sm90::kConsumerRegs>();

  // Through a shuffle, so that ptxas knows it warp-uniform: the Q descriptors built from it (gemm_qk)
  // then live in uniform registers instead of being rebuilt in vector registers and moved over
  // (R2UR) every key block. On the H100 (bench/NOTES.md, session 18): +1-5% on 16-bit and FP8
  // rows, but FP8 d64 -6% (its main loop did not lengthen; not understood), which keeps the plain
  // index.
  const int wg = Sm90::kFp8 && Sm90::kHeadDim == 64 ? warpgroup - 1 : __shfl_sync(0xffffffffu, warpgroup - 1, 0);
  const int tw = threadIdx.x - 128 * warpgroup;
  const int warp = tw >> 5, lane = tw & 31;
  constexpr int kD8 = sm90::consumer::kD8;
  // Ping-pong: consumer warpgroup 0 takes the first turn.
  if (Sm90::kPingPong && wg == Sm90::kConsumers - 1) ptx::named_bar_arrive(sm90::consumer::kBarTurn0, 256);

  for (int tcount = 0;; ++tcount) {
    // q_full publishes both the tile (PublishedTile, written before the producer's arrival) and
    // its Q tile.
    const int slot = tcount % Sm90::kQStages;
    ptx::mbar_wait(sm.q_full(slot), (tcount / Sm90::kQStages) & 1);
    const PublishedTile* published = sm.tile_of(slot);
    const int t = published->t;
    // Where this tile starts in the K/V stage ring (the producer's count; keeping it in a register
    // across tiles would cost the consumers a spill).
    const int it0 = published->it0;
    // Clusters, causal: the key blocks the pair streams (producer.cuh).
    const int n_stream = Sm90::kCluster > 1 && Traits::kCausal ? published->n_stream : 0;
    if (t < 0) break;
    const sm90::Tile x = published->x;
    // This warp's 16 rows are queries q0.. of one head (rows_per_head is a multiple of 16).
    const int local0 = wg * 64 + warp * 16;
    const int head = x.h + local0 / f.rows_per_head;
    const int warp_row0 = x.m0 + local0 % f.rows_per_head;
    sm90::consumer::Softmax softmax;
    softmax.init();
    float o[kD8][4];
#pragma unroll
    for (int i = 0; i < kD8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    // Sm90::kSumMma: the row sums of P, from P·V's columns of ones (dead code otherwise).
    float lsum[4] = {0.f, 0.f, 0.f, 0.f};

    float sl2 = f.scale_log2, vd = 1.f;
    const float *kd_blk = nullptr, *vd_blk = nullptr;
    if constexpr (Sm90::kFp8) fp8_descales(f, x, head, warp_row0, sl2, vd, kd_blk, vd_blk);
    const sm90::consumer::Mainloop mainloop{
        f,   sm,         sm.q(slot), wg,         lane,          warp_row0, x.n_blocks,
        it0, x.n_block0, x.seqlen_k, x.causal_offset, x.window_left, sl2,       kd_blk, vd_blk, x.rot};
    // No row of this warpgroup in the sequence (the same for all its threads).
    const bool idle = Sm90::kIdleWg && x.m0 + (wg * 64) % f.rows_per_head >= x.seqlen_q;
    if (idle) {
      mainloop.run_idle();
    } else if constexpr (Sm90::kOverlap) {
      mainloop.run_overlapped(softmax, o, lsum);
    } else {
      mainloop.run_serial(softmax, o, lsum);
    }
    if constexpr (Sm90::kCluster > 1 && Traits::kCausal) mainloop.drain(n_stream);
    // The epilogue's fields read again before the slot is released, rather than held in registers
    // across the main loop (at d256 that spilled).
    const sm90::Tile xe = published->x;
    // Every GEMM of this tile has completed: the producer may reuse the Q slot.
    ptx::mbar_arrive(sm.q_empty(slot));

    float inv_l[2], lse[2];
    if constexpr (Sm90::kSumMma) {
      softmax.finish_sums(sl2, {lsum[0], lsum[2]}, inv_l, lse);
    } else {
      softmax.finish(sl2, inv_l, lse);
    }
    if constexpr (Sm90::kFp8) {
      vd = mainloop.last_vd(vd);
      inv_l[0] *= vd, inv_l[1] *= vd;
    }
    if constexpr (Traits::kInfer) {
      // Packed (varlen) q/o and LSE rows start at the sequence's offset; LSE rows are the split
      // partials' row index too (params.cuh).
      const bool packed = f.cu_seqlens_q != 0;
      const i64 lse_row0 = (packed ? (i64)xe.q_row0 : xe.b * f.lse_stride_b) + head * f.lse_stride_h;
      const int rows_valid = xe.seqlen_q - warp_row0;
      // Split partials stay sink-free: the combine adds the sink once per row.
      if (f.sinks != 0 && f.num_splits == 1) attn::add_sink(reinterpret_cast<const float*>(f.sinks)[head], inv_l, lse);
      if (f.num_splits > 1) {
        const i64 r0 = xe.split * f.accum_split_rows + lse_row0;
        float* acc = reinterpret_cast<float*>(f.o_accum) + (r0 + warp_row0) * Sm90::kHeadDim;
        sm90::store_o_partial(o, inv_l, acc, rows_valid, lane);
        sm80::store_lse(reinterpret_cast<float*>(f.lse_accum) + r0, lse, warp_row0, xe.seqlen_q, lane);
      } else {
        u16* out = reinterpret_cast<u16*>(f.o) + (packed ? 0 : xe.b * f.o_stride_b) + head * f.o_stride_h +
                   (xe.q_row0 + warp_row0) * f.o_stride_s;
        sm90::store_o(o, inv_l, out, f.o_stride_s, rows_valid, lane);
        if (f.lse != 0) sm80::store_lse(reinterpret_cast<float*>(f.lse) + lse_row0, lse, warp_row0, xe.seqlen_q, lane);
      }
      continue;
    }
    if constexpr (Sm90::kTmaStore) {
      // The O tensor map's box is min(64, rows_per_head) rows by 64 / that heads: one warpgroup's rows.
      const int wg_head = xe.h + wg * 64 / f.rows_per_head, wg_row0 = xe.m0 + wg * 64 % f.rows_per_head;
      // An idle warpgroup's rows are all outside the tensor: TMA would drop every one of them.
      if (!idle) sm90::store_o_tma(o, inv_l, p, sm.o + wg * Sm90::kOBytesPerWg, wg, tw, wg_row0, wg_head, xe.b);
    } else {
      u16* out = reinterpret_cast<u16*>(f.o) + xe.b * f.o_stride_b + head * f.o_stride_h + warp_row0 * f.o_stride_s;
      sm90::store_o(o, inv_l, out, f.o_stride_s, f.seqlen_q - warp_row0, lane);
    }
    if (f.lse != 0) {
      float* lse_bh = reinterpret_cast<float*>(f.lse) + xe.b * f.lse_stride_b + head * f.lse_stride_h;
      sm80::store_lse(lse_bh, lse, warp_row0, f.seqlen_q, lane);
    }
  }
  // Outstanding TMA stores read this CTA's shared memory and must land before it exits.
  if (Sm90::kTmaStore && tw == 0) ptx::tma_store_wait<0>();
  // The peer's consumers arrive on this CTA's stage barriers up to their last block: neither CTA
  // leaves while the other may still do so (the producer warpgroup has exited, which counts as
  // arrived).
  if constexpr (Sm90::kCluster > 1) ptx::cluster_sync();
}
