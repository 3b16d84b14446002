// Hopper epilogue: normalise O and write it, either straight from the accumulator registers or
// staged in shared memory and stored by TMA (Sm90::kTmaStore).
#pragma once
#include "../common/params.cuh"
#include "../common/ptx/cvt.cuh"
#include "../common/ptx/tma.cuh"
#include "config.cuh"
#include "smem.cuh"

namespace sm90 {

// o holds this warp's 16 rows (row0 = first) in the wgmma D layout; out points at row row0.
FC_DEVICE void store_o(const float (&o)[Sm90::kHeadDim / 8][4], const float (&inv_l)[2], u16* out, i64 row_stride,
                       int rows_valid, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = g + 8 * r;
    if (row >= rows_valid) continue;
    u16* dst = out + row * row_stride + 2 * t;
#pragma unroll
    for (int i = 0; i < Sm90::kHeadDim / 8; ++i) {
      *reinterpret_cast<u32*>(dst + 8 * i) =
          ptx::pack2<Traits::kBf16>(o[i][2 * r] * inv_l[r], o[i][2 * r + 1] * inv_l[r]);
    }
  }
}

// Split-KV partial (FC_INFER): this warp's 16 rows of normalised O in fp32, rows of head-dim floats
// from `out` (the warp's first row); each quad writes 32 contiguous bytes per row and n8 tile.
FC_DEVICE void store_o_partial(const float (&o)[Sm90::kHeadDim / 8][4], const float (&inv_l)[2], float* out,
                               int rows_valid, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = g + 8 * r;
    if (row >= rows_valid) continue;
    float* dst = out + row * Sm90::kHeadDim + 2 * t;
#pragma unroll
    for (int i = 0; i < Sm90::kHeadDim / 8; ++i) {
      *reinterpret_cast<f32x2*>(dst + 8 * i) = f32x2{o[i][2 * r] * inv_l[r], o[i][2 * r + 1] * inv_l[r]};
    }
  }
}

// Named barriers 4.. : one per consumer warpgroup, for its epilogue (1 .. 3 are the ping-pong turns).
constexpr int kBarEpilogue0 = 4;

// TMA-store epilogue: this warpgroup's 64 x head-dim output, normalised, goes to its shared-memory
// buffer in the 128-byte swizzle layout of the O tensor map's box, then one thread stores it.
// tw is the thread's index in the warpgroup; row0 the warpgroup's first query row.
FC_DEVICE void store_o_tma(const float (&o)[Sm90::kHeadDim / 8][4], const float (&inv_l)[2], const Sm90Params& p,
                           u32 buf, int wg, int tw, int row0, int h, int b) {
  const int warp = tw >> 5, lane = tw & 31, g = lane >> 2, t = lane & 3;
  // The previous tile's store must have finished reading the buffer before it is overwritten.
  if (tw == 0) ptx::tma_store_wait_read<0>();
  ptx::named_bar_sync(kBarEpilogue0 + wg, 128);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = warp * 16 + g + 8 * r;
#pragma unroll
    for (int i = 0; i < Sm90::kHeadDim / 8; ++i) {
      // Chunk i % 8 of d block i / 8, in the TMA 128-byte swizzle.
      const u32 addr = buf + (i / 8) * 64 * 128 + ptx::swizzle128(row, i % 8) + t * 4;
      ptx::st_shared_u32(addr, ptx::pack2<Traits::kBf16>(o[i][2 * r] * inv_l[r], o[i][2 * r + 1] * inv_l[r]));
    }
  }
  ptx::fence_proxy_async_smem();
  ptx::named_bar_sync(kBarEpilogue0 + wg, 128);
  if (tw == 0) {
#pragma unroll
    for (int db = 0; db < Sm90::kDBlocks; ++db) {
      ptx::tma_store_4d(&p.tma_o, buf + db * 64 * 128, db * 64, row0, h, b);
    }
    ptx::tma_store_commit();
  }
}

// Sm90::kStorer: the same output written into the warpgroup's buffer, which the storer thread
// (run_storer) then stores. `n` counts this warpgroup's earlier outputs: the buffer is rewritten
// only after the storer's TMA store has read the previous one (o_empty's phase n).
FC_DEVICE void store_o_smem(const float (&o)[Sm90::kHeadDim / 8][4], const float (&inv_l)[2], const Sm90Smem& sm,
                            int n, int wg, int tw, int row0, int h, int b) {
  const int warp = tw >> 5, lane = tw & 31, g = lane >> 2, t = lane & 3;
  const u32 buf = sm.o + wg * Sm90::kOBytesPerWg;
  ptx::mbar_wait_warp(sm.o_empty(wg), n & 1);  // phase 0 completes at launch (fwd.cu)
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = warp * 16 + g + 8 * r;
#pragma unroll
    for (int i = 0; i < Sm90::kHeadDim / 8; ++i) {
      const u32 addr = buf + (i / 8) * 64 * 128 + ptx::swizzle128(row, i % 8) + t * 4;
      ptx::st_shared_u32(addr, ptx::pack2<Traits::kBf16>(o[i][2 * r] * inv_l[r], o[i][2 * r + 1] * inv_l[r]));
    }
  }
  if (tw == 0) {
    int* c = sm.o_coord(wg);
    c[0] = row0, c[1] = h, c[2] = b;
  }
  // The TMA store (async proxy) reads what these generic stores wrote; every thread's arrival
  // releases its own stores to the storer, whose wait acquires them.
  ptx::fence_proxy_async_smem();
  ptx::mbar_arrive(sm.o_full(wg));
}

// Sm90::kStorer: no more output from warpgroup wg, after its n outputs. Like an output it waits
// until the storer has taken the previous one: two o_full phases completing before the storer
// looks would leave its parity wait on the third, forever.
FC_DEVICE void store_o_stop(const Sm90Smem& sm, int n, int wg, int tw) {
  ptx::mbar_wait_warp(sm.o_empty(wg), n & 1);
  if (tw == 0) sm.o_coord(wg)[0] = -1;
  ptx::mbar_arrive(sm.o_full(wg));
}

// Sm90::kStorer: one thread of the producer warpgroup issues every TMA store of O. Each consumer
// warpgroup's outputs come in order; the storer takes them warpgroup by warpgroup (they run the
// same tiles) until each has signalled its stop.
FC_DEVICE void run_storer(const Sm90Params& p, const Sm90Smem& sm) {
  ptx::prefetch_tma_desc(&p.tma_o);
  for (int n = 0;; ++n) {
    bool stop = false;
#pragma unroll 1
    for (int w = 0; w < Sm90::kConsumers; ++w) {
      ptx::mbar_wait(sm.o_full(w), n & 1);
      const int* c = sm.o_coord(w);
      const int row0 = c[0], h = c[1], b = c[2];
      if (row0 < 0) {
        stop = true;
        continue;
      }
      const u32 buf = sm.o + w * Sm90::kOBytesPerWg;
#pragma unroll
      for (int db = 0; db < Sm90::kDBlocks; ++db) {
        ptx::tma_store_4d(&p.tma_o, buf + db * 64 * 128, db * 64, row0, h, b);
      }
      ptx::tma_store_commit();
      ptx::tma_store_wait_read<0>();
      ptx::mbar_arrive(sm.o_empty(w));
    }
    if (stop) break;
  }
  // Outstanding TMA stores read this CTA's shared memory and must land before it exits.
  ptx::tma_store_wait<0>();
}

}  // namespace sm90
