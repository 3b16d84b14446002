// Forward attention for Hopper (sm_90a): a persistent kernel with a producer warpgroup issuing TMA
// loads and consumer warpgroups of 64 query rows each running wgmma; mbarrier-synchronised Q and
// K/V stage rings; setmaxnreg gives the consumers the registers. Roles only here; the stages live
// in scheduler / producer / consumer / epilogue.cuh.
#include "../attn/softmax.cuh"
#include "../common/params.cuh"
#include "../sm80/epilogue.cuh"
#include "config.cuh"
#include "consumer.cuh"
#include "epilogue.cuh"
#include "producer.cuh"
#include "scheduler.cuh"
#include "smem.cuh"

extern "C" __global__ void __launch_bounds__(Sm90::kThreads, 1) fc_fwd_sm90(const __grid_constant__ Sm90Params p) {
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const Sm90Smem sm(smem_raw);
  const FwdParams& f = p.base;
  const sm90::Scheduler sched(f);
  const int warpgroup = threadIdx.x / 128;

  if (threadIdx.x == 0) {
    for (int s = 0; s < Sm90::kQStages; ++s) {
      ptx::mbar_init(sm.q_full(s), 1);
      ptx::mbar_init(sm.q_empty(s), 128 * Sm90::kConsumers);
    }
    for (int s = 0; s < Sm90::kStages; ++s) {
      ptx::mbar_init(sm.k_full(s), 1);
      ptx::mbar_init(sm.v_full(s), 1);
      ptx::mbar_init(sm.k_empty(s), 128 * Sm90::kConsumers);
      ptx::mbar_init(sm.v_empty(s), 128 * Sm90::kConsumers);
    }
    ptx::fence_barrier_init();
  }
  __syncthreads();

  if (warpgroup == 0) {
    ptx::setmaxnreg_dec<Sm90::kProducerRegs>();
    if (threadIdx.x == 0) sm90::producer::run(p, sm, sched);
    return;
  }
  ptx::setmaxnreg_inc<Sm90::kConsumerRegs>();

  const int wg = warpgroup - 1;
  const int tw = threadIdx.x - 128 * warpgroup;
  const int warp = tw >> 5, lane = tw & 31;
  constexpr int kN8 = sm90::consumer::kN8, kD8 = sm90::consumer::kD8;
  // Ping-pong: consumer warpgroup 0 takes the first turn.
  if (Sm90::kPingPong && wg == Sm90::kConsumers - 1) ptx::named_bar_arrive(sm90::consumer::kBarTurn0, 256);

  // One tile as the consumers see it: the producer's published index and ring position, and
  // where this warp's rows land (16 rows of one head: rows_per_head is a multiple of 16).
  struct TileView {
    int slot, t, it0, head, warp_row0;
    sm90::Tile x;
  };
  auto fetch = [&](int tcount) {
    TileView v{};
    // q_full publishes both the tile index (written before the producer's arrival) and its Q tile.
    v.slot = tcount % Sm90::kQStages;
    ptx::mbar_wait(sm.q_full(v.slot), (tcount / Sm90::kQStages) & 1);
    const int* published = sm.tile_of(v.slot);
    v.t = published[0];
    // Where this tile starts in the K/V stage ring (the producer's count; keeping it in a register
    // across tiles would cost the consumers a spill).
    v.it0 = published[1];
    if (v.t < sched.num_tiles) {
      v.x = sched.tile(v.t);
      const int local0 = wg * 64 + warp * 16;
      v.head = v.x.h + local0 / f.rows_per_head;
      v.warp_row0 = v.x.m0 + local0 % f.rows_per_head;
    }
    return v;
  };
  auto mainloop_of = [&](const TileView& v) {
    return sm90::consumer::Mainloop{f, sm, sm.q(v.slot), wg, lane, v.warp_row0, v.x.n_blocks, v.it0};
  };
  auto epilogue = [&](const TileView& v, const float(&o)[kD8][4], const float(&inv_l)[2], const float(&lse)[2]) {
    const sm90::Tile& x = v.x;
    if constexpr (Sm90::kTmaStore) {
      // The O tensor map's box is min(64, rows_per_head) rows by 64 / that heads: one warpgroup's rows.
      const int wg_head = x.h + wg * 64 / f.rows_per_head, wg_row0 = x.m0 + wg * 64 % f.rows_per_head;
      sm90::store_o_tma(o, inv_l, p, sm.o + wg * Sm90::kOBytesPerWg, wg, tw, wg_row0, wg_head, x.b);
    } else {
      u16* out = reinterpret_cast<u16*>(f.o) + x.b * f.o_stride_b + v.head * f.o_stride_h + v.warp_row0 * f.o_stride_s;
      sm90::store_o(o, inv_l, out, f.o_stride_s, f.seqlen_q - v.warp_row0, lane);
    }
    if (f.lse != 0) {
      float* lse_bh = reinterpret_cast<float*>(f.lse) + ((i64)x.b * f.heads + v.head) * f.seqlen_q;
      sm80::store_lse(lse_bh, lse, v.warp_row0, f.seqlen_q, lane);
    }
  };
  auto zero = [](float(&o)[kD8][4]) {
#pragma unroll
    for (int i = 0; i < kD8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  };

  if constexpr (Sm90::kCrossTile) {
    // Tiles as one stream of key blocks: a tile's last P·V goes out in the same turn as the next
    // tile's first Q·Kᵀ, and the first tile's epilogue runs while that Q·Kᵀ is on the tensor cores,
    // instead of every tile draining its GEMMs, storing O, then starting cold.
    attn::OnlineSoftmax<kN8> softmax;
    float o[kD8][4], sc[kN8][4];
    u32 pa[sm90::consumer::kK16][4];
    TileView cur = fetch(0);
    if (cur.t < sched.num_tiles) {
      softmax.init();
      zero(o);
      const auto first = mainloop_of(cur);
      if (first.n_blocks > 0) first.begin(softmax, sc, pa);
    }
    for (int tcount = 0; cur.t < sched.num_tiles; ++tcount) {
      const auto ml = mainloop_of(cur);
      if (ml.n_blocks > 0) ml.steady(softmax, o, sc, pa);
      // Every Q·Kᵀ of this tile has completed: the producer may reuse its Q slot.
      ptx::mbar_arrive(sm.q_empty(cur.slot));
      float inv_l[2], lse[2];
      softmax.finish(f.scale_log2, inv_l, lse);
      const TileView next = fetch(tcount + 1);
      const bool more = next.t < sched.num_tiles;
      const auto nml = mainloop_of(next);
      // Both warpgroups take the same branch (same tiles), so their turn counts stay equal.
      if (more && ml.n_blocks > 0 && nml.n_blocks > 0) {
        ml.handoff(nml, o, sc, pa);
        epilogue(cur, o, inv_l, lse);
        softmax.init();
        zero(o);
        nml.after_handoff(softmax, sc, pa);
      } else {
        if (ml.n_blocks > 0) ml.end(o, pa);
        epilogue(cur, o, inv_l, lse);
        if (more) {
          softmax.init();
          zero(o);
          if (nml.n_blocks > 0) nml.begin(softmax, sc, pa);
        }
      }
      cur = next;
    }
  } else {
    for (int tcount = 0;; ++tcount) {
      const TileView v = fetch(tcount);
      if (v.t >= sched.num_tiles) break;
      attn::OnlineSoftmax<kN8> softmax;
      softmax.init();
      float o[kD8][4];
      zero(o);
      const auto mainloop = mainloop_of(v);
      if constexpr (Sm90::kOverlap) {
        mainloop.run_overlapped(softmax, o);
      } else {
        mainloop.run_serial(softmax, o);
      }
      // Every GEMM of this tile has completed: the producer may reuse the Q slot.
      ptx::mbar_arrive(sm.q_empty(v.slot));
      float inv_l[2], lse[2];
      softmax.finish(f.scale_log2, inv_l, lse);
      epilogue(v, o, inv_l, lse);
    }
  }
  // Outstanding TMA stores read this CTA's shared memory and must land before it exits.
  if (Sm90::kTmaStore && tw == 0) ptx::tma_store_wait<0>();
}
