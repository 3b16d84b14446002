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

// Built where it compiles spill-free (NVRTC 13.0.88; not the d64 softcap or ping-pong kernels, where
// a value held from the kernel's start then spilled). Mirrored by plan/backward.rs
// sm90_bwd_dsum_main, which sets BwdParams::dsum_main only for these kernels.
constexpr bool kDsumBuilt = Sm90Bwd::kDqSmem && !(Sm90Bwd::kHeadDim == 64 && (Sm90Bwd::kSoftcap || Sm90Bwd::kPingPong));

// BwdParams::dsum_main: D = rowsum(dO ∘ O) − dlse and lse2 of grid row `row`'s query rows (its
// heads x padded query rows), what bwd/prep.cu computes for the rows before zero_lag; the same
// arithmetic (fp32 products of the 16-bit values, summed over the lanes of a row). Query row m of
// each head is the warp-row (m / kRows) of CTA n = (m / kRows) / 3 % N (warps 1 .. 3 take turns),
// so the row's N CTAs split it evenly. A lane reads 8 values (16 bytes) of O and of dO per query row.
FC_DEVICE void dsum_rows(const BwdParams& f, const Sm90BwdSmem& sm, u32 tid) {
  const int row = (int)ptx::ld_shared_u32(sm.cta_info(0)) + f.zero_lag;
  constexpr int kLanes = Sm90Bwd::kHeadDim <= 64 ? 8 : 16;  // lanes per query row, 8 values each
  constexpr int kRows = 32 / kLanes;                         // query rows per warp at once
  // The loop is bound by latency, and a 24-register thread holds one 16-byte value of each tensor:
  // the rows kAhead trips later are asked into L1 first (prefetch.global.L1 holds no register).
  constexpr int kAhead = 2;
  const int c = (int)(tid & 31) % kLanes;
  // Everything else is formed where used from the params (constant bank) and shared memory: these
  // warps have 24 registers, and a pointer or stride held across the loop spilled.
  const int per_batch = f.kv_heads * f.kv_splits;  // grid rows per batch
  const int b = row / per_batch;
  const int h0 = (row - b * per_batch) * (f.heads / per_batch);
  const int first = ((int)ptx::ld_shared_u32(sm.cta_info(1)) * 3 + (int)(tid >> 5) - 1) * kRows + (int)(tid & 31) / kLanes;
  const auto dout_at = [&](int h, int m) {
    return reinterpret_cast<const u16*>(f.dout) + b * f.do_stride_b + h * f.do_stride_h + m * f.do_stride_s + 8 * c;
  };
  const auto o_at = [&](int h, int m) {
    return reinterpret_cast<const u16*>(f.o) + b * f.o_stride_b + h * f.o_stride_h + m * f.o_stride_s + 8 * c;
  };
  const auto prefetch = [](const u16* p) { asm volatile("prefetch.global.L1 [%0];\n" ::"l"(p)); };
#pragma unroll 1
  for (int h = h0; h < h0 + f.heads / per_batch; ++h) {
#pragma unroll 1
    for (int j = 0; j < kAhead; ++j) {
      const int m = first + j * (int)gridDim.x * 3 * kRows;
      if (m < f.seqlen_q && 8 * c < Sm90Bwd::kHeadDim) {
        prefetch(dout_at(h, m));
        prefetch(o_at(h, m));
      }
    }
    // Not unrolled: every lane of a warp runs the same trips (m - lane / kLanes is the warp's, and
    // seqlen_q_pad a multiple of kRows), so the shuffles below are never divergent.
#pragma unroll 1
    for (int m = first; m < f.num_m_blocks * Sm90Bwd::kBlockM; m += (int)gridDim.x * 3 * kRows) {
      const bool real = m < f.seqlen_q;
      const int ma = m + kAhead * (int)gridDim.x * 3 * kRows;
      if (ma < f.seqlen_q && 8 * c < Sm90Bwd::kHeadDim) {
        prefetch(dout_at(h, ma));
        prefetch(o_at(h, ma));
      }
      float acc = 0.f;
      if (real && 8 * c < Sm90Bwd::kHeadDim) {
        const u32x4 x = *reinterpret_cast<const u32x4*>(dout_at(h, m));
        const u32x4 y = *reinterpret_cast<const u32x4*>(o_at(h, m));
        const u32 xs[4] = {x.x, x.y, x.z, x.w}, ys[4] = {y.x, y.y, y.z, y.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          float x0, x1, y0, y1;
          ptx::unpack2<Sm90Bwd::kBf16>(xs[i], x0, x1);
          ptx::unpack2<Sm90Bwd::kBf16>(ys[i], y0, y1);
          acc = fmaf(x1, y1, fmaf(x0, y0, acc));
        }
      }
#pragma unroll
      for (int off = kLanes / 2; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
      if (c == 0) {
        const i64 bh = (i64)b * f.heads + h;
        float l = kNegInf;
        if (real) {
          if (f.dlse != 0) acc -= reinterpret_cast<const float*>(f.dlse)[bh * f.seqlen_q + m];
          l = reinterpret_cast<const float*>(f.lse)[bh * f.seqlen_q + m];
        }
        const i64 at = bh * (f.num_m_blocks * Sm90Bwd::kBlockM) + m;
        reinterpret_cast<float*>(f.dsum)[at] = real ? acc : 0.f;
        reinterpret_cast<float*>(f.lse2)[at] = l == kNegInf ? __int_as_float(0x7f800000) : l * 1.4426950408889634f;
      }
    }
  }
}

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
  if constexpr (kDsumBuilt) {
    if (f.dsum_main != 0) dsum_rows(f, sm, tid);
  }
  // The bulk reduces (async proxy) of other CTAs add to these generic stores, and their producers'
  // bulk copies read D and lse2: proxy fence, then meet, and one release for the three warps
  // (cumulative over what the barrier ordered before it).
  ptx::fence_proxy_async_global();
  ptx::named_bar_sync(kBarZeroed, kThreads);
  // The row read again (24 registers: held across the loops above, it spilled).
  if (tid == 32) ptx::release_next_turn(bwd_zero_counters(f) + ptx::ld_shared_u32(sm.cta_info(0)) + f.zero_lag);
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
