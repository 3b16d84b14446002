// The fp32 dQ accumulator zeroed inside the Hopper backward (BwdParams::zero_lag > 0) instead of
// by bwd/prep.cu before it: prep wrote all 128 MiB of it at 16K tokens x 2048 values, about half
// of its ~101 us (bench/NOTES.md session 21, item 2). Here the producer warpgroup's three idle
// warps store the zeros once the CTA's K and V landed, while the consumers compute. The prep pass
// lost 40 us and the main kernel gained ~22 at D128 S1K (its converting kernels; causal ones
// level): +1.2-5.6% per call on the H100 (bench/NOTES.md session 22).
//
// Who zeroes what. A grid row (kv head x split, batch) is the N CTAs of its key blocks, and its
// accumulator (its query heads x padded query rows x head dim) is one contiguous range, row after
// row. CTA n of row r zeroes the 1.5 KiB pieces n, n + N, n + 2N, ... of row r + zero_lag's
// range, then counts it (bwd_zero_counters[r + zero_lag], release). A CTA's producer thread waits
// until its own row's count reaches N (acquire) before its first q_full arrival, which the
// consumers wait for before their first bulk reduce. bwd/prep.cu zeroes the rows before
// zero_lag. Row r's CTAs were launched before row r + zero_lag's (key block fastest, then row;
// with causal sections, Work::sectioned, the host keeps the lag at least a section long, so the
// rows are in different sections, launched one after the other), and zeroing waits for nothing,
// so the wait cannot deadlock; with a lag of about a wave of rows the zeros are long written by
// the time it is asked. scripts/model/bwd_zero_cover.py checks the coverage and the launch order.
#pragma once
#include "../common/params.cuh"
#include "../common/ptx/atomic.cuh"
#include "bwd_config.cuh"
#include "bwd_smem.cuh"

namespace sm90::bwd::zero {

constexpr int kThreads = 96;  // warps 1 .. 3 of the producer warpgroup (threads 32 .. 127)
constexpr int kBarZeroed = 9;  // named barrier of those warps (the consumers use 1 .. 8)

// The zeroing warps. 24 registers (setmaxnreg): the CTA's row and key block are read from shared
// memory (Sm90BwdSmem::cta_info) and the thread index from %tid.x, not held (the converter's
// spills, sm90/bwd_convert.cuh).
FC_DEVICE void run(const BwdParams& f, const Sm90BwdSmem& sm, bool loads) {
  const int row = (int)ptx::ld_shared_u32(sm.cta_info(0)) + f.zero_lag;
  if (row >= (int)(gridDim.y * gridDim.z)) return;  // the same for all three warps
  // After the CTA's own first loads (K and V) landed: the zeros' stores do not compete with them.
  if (loads) ptx::mbar_wait(sm.kv_full(), 0);
  // 16-byte units of a grid row's accumulator: (heads per row x query blocks, cta_info(2)) x
  // block_m x head dim / 4. Read from shared memory: computed here, ptxas shared the division with
  // Work's and kept it live into these warps' 24 registers, where it spilled.
  const i64 units = (i64)ptx::ld_shared_u32(sm.cta_info(2)) * (Sm90Bwd::kBlockM * Sm90Bwd::kHeadDim / 4);
  u32 tid;
  asm volatile("mov.u32 %0, %%tid.x;\n" : "=r"(tid));
  // The CTAs of the row take turns by 96 units (1.5 KiB, one store per thread): no 64-bit
  // division (its slow path spilled at 24 registers).
  const i64 stride = (i64)gridDim.x * kThreads;
  u32x4* acc = reinterpret_cast<u32x4*>(f.dq_accum) + row * units;
  const u32x4 zero = {0u, 0u, 0u, 0u};
  // Not unrolled: an unrolled loop's trip count is a 64-bit division.
#pragma unroll 1
  for (i64 u = (i64)ptx::ld_shared_u32(sm.cta_info(1)) * kThreads + (tid - 32); u < units; u += stride) acc[u] = zero;
  // The bulk reduces (async proxy) of other CTAs add to these generic stores: proxy fence, then
  // meet, and one release for the three warps (cumulative over what the barrier ordered before it).
  ptx::fence_proxy_async_global();
  ptx::named_bar_sync(kBarZeroed, kThreads);
  if (tid == 32) ptx::release_next_turn(bwd_zero_counters(f) + row);
}

// The producer's thread, before its first q_full arrival (sm90/bwd_producer.cuh): the CTA's row's
// accumulator is zeroed (by bwd/prep.cu for the rows before zero_lag, else by the CTAs of row -
// zero_lag, every one of the N having counted its pieces). Its arrival releases, at CTA scope, what
// this acquire saw to the consumers, which wait for it before their first bulk reduce (in the
// consumers' issuing warp, the same wait spilled a consumer register in four variants).
FC_DEVICE void wait(const BwdParams& f, const Sm90BwdSmem& sm) {
  const int row = (int)ptx::ld_shared_u32(sm.cta_info(0));
  if (row < f.zero_lag) return;
  while (ptx::ld_acquire_u32(bwd_zero_counters(f) + row) != gridDim.x) __nanosleep(200);
  ptx::fence_proxy_async_global();
}

}  // namespace sm90::bwd::zero
