// dQ converted inside the Hopper backward (BwdParams::convert_lag > 0, in the kernels built with
// it: Sm90Bwd::kConvert), instead of by bwd/post.cu after it: the post kernel re-read the whole
// fp32 accumulator from memory and wrote dQ, 68 us per call at 16K tokens x 2048 values (9% of a
// D128 S1K backward; bench/NOTES.md session 21). Here the producer warpgroup's three idle warps do
// it while the consumers compute (+3.6-3.8% on the non-causal S1K rows, level at S4K; causal rows
// measured slower and keep the post kernel).
//
// Who converts what. A grid row (kv head x split, batch) is the N CTAs of its key blocks; the
// dQ tile of (query head, query block m) is complete once every one of them is done. Each CTA's
// issuing thread counts its row done (dq_sem[row], release) after its last reduce has landed
// (consumer::run), and the CTAs of row r convert row r - convert_lag. That row's CTAs were all
// launched before row r's first one (launch order is key block fastest, then row: no kernel that
// converts has a causal mask, so none is launched in causal sections), so the wait cannot
// deadlock, and with a lag of about one wave of rows they have usually finished by then. Rows from
// convert_rows on (the last lag rows) are left to bwd/post.cu.
//
// A unit (query head hi of the row, query block m) is converted by one of the key blocks that
// visit m, first_n_block(m) + (hi * M + m) % count (BwdTraits::n_blocks_visiting; any key block
// when none visits m, whose dQ rows are zero). Without a causal mask every key block visits every
// m, so that is a round robin; the mask-aware form keeps a window's ownership within its CTAs.
// scripts/model/bwd_convert_owner.py checks the counts against the walk and the ownership.
#pragma once
#include "../common/params.cuh"
#include "../common/ptx/atomic.cuh"
#include "../common/ptx/cvt.cuh"
#include "bwd_config.cuh"
#include "bwd_smem.cuh"

namespace sm90::bwd::convert {

constexpr int kThreads = 96;  // warps 1 .. 3 of the producer warpgroup (threads 32 .. 127)
constexpr int kChunks = Sm90Bwd::kHeadDim / 8;  // 8-float chunks of a row

// 16-byte load that may hit L1 (ld.global.ca), and a prefetch into L1 holding no register. The
// tile was written by other CTAs' bulk reduces; L1 is clean of it after the acquire (run below).
FC_DEVICE u32x4 ld_ca_v4(const float* p) {
  u32x4 v;
  asm volatile("ld.global.ca.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}
FC_DEVICE void prefetch_l1(const float* p) { asm volatile("prefetch.global.L1 [%0];\n" ::"l"(p)); }

// Register pressure: the producer warpgroup has 24 registers (R1 is the stack pointer), and
// ptxas hoists every loop-invariant value into one, then spills. So values the loops do not need
// in a register are re-read where used: the CTA's row and key block from shared memory (asm volatile)
// and the thread index from %tid.x (asm volatile).
FC_DEVICE int info(const Sm90BwdSmem& sm, int i) { return (int)ptx::ld_shared_u32(sm.cta_info(i)); }
FC_DEVICE int converter_thread() {
  u32 t;
  asm volatile("mov.u32 %0, %%tid.x;\n" : "=r"(t));
  return (int)t - 32;
}

// Batch b and query head h of query head hi of the converted grid row (kv head x split, batch).
FC_DEVICE void converted_head(const BwdParams& f, const Sm90BwdSmem& sm, int hi, int& b, int& h) {
  const int row = info(sm, 0) - f.convert_lag;
  const int ny = (int)gridDim.y;
  b = row / ny;
  const int y = row - b * ny;
  const int group = f.heads / f.kv_heads;
  h = (y / f.kv_splits) * group + (y % f.kv_splits) * (group / f.kv_splits) + hi;
}

// The key blocks visiting query block m (`count`) and the owner of unit u (query head u / M,
// block m) among them, as the header describes.
FC_DEVICE int unit_owner(const BwdParams& f, int u, int m, int& count) {
  count = BwdTraits::n_blocks_visiting(m, f.num_n_blocks, f.causal_offset, f.window_offset_left);
  return count > 0 ? BwdTraits::first_n_block(m, f.window_offset_left) + u % count : u % f.num_n_blocks;
}

// Until every CTA of grid row `row` has counted itself done (acquire).
FC_DEVICE void wait_row_done(const BwdParams& f, int row) {
  while (ptx::ld_acquire_u32(reinterpret_cast<const u32*>(f.dq_sem) + row) < (u32)f.num_n_blocks) __nanosleep(500);
}

// Unit (query head hi of the converted row, query block m): dQ = scale * accumulator (its 8-float
// chunks swizzled per row, BwdTraits::dq_chunk), or zeros when no key block visits the block
// (`zero`). 16 bytes of the accumulator a turn: each thread always takes the same half-chunk of a
// row (a row's halves divide 96 at head dims 64, 96 and 128) and every 96 / halves-th row.
FC_DEVICE void convert_block(const BwdParams& f, const Sm90BwdSmem& sm, int hi, int m, bool zero) {
  constexpr int kHalves = 2 * kChunks;
  static_assert(kThreads % kHalves == 0, "a row's 16-byte halves must divide the converting threads");
  int b, h;
  converted_head(f, sm, hi, b, h);
  const int m0 = m * Sm90Bwd::kBlockM;
  const i64 seqlen_q_pad = (i64)f.num_m_blocks * Sm90Bwd::kBlockM;
  const float* acc = reinterpret_cast<const float*>(f.dq_accum) + (((i64)b * f.heads + h) * seqlen_q_pad + m0) * Sm90Bwd::kHeadDim;
  u16* dq = reinterpret_cast<u16*>(f.dq) + b * f.dq_stride_b + h * f.dq_stride_h + m0 * f.dq_stride_s;
  const int rows = min(Sm90Bwd::kBlockM, f.seqlen_q - m0);
  constexpr int kStep = kThreads / kHalves;  // rows between a thread's turns
  // The loop is bound by latency (a round trip to L2 a turn) and a 24-register thread cannot hold
  // several 16-byte values in flight, so each turn first asks for the row kAhead turns later into
  // L1 (prefetch.global.L1 holds no register), and the turn's own load finds it there. The acquire
  // that saw the row done invalidated L1 (CCTL.IVALL), so what L1 holds of the tile is current.
  constexpr int kAhead = 4;
  if (!zero) {
#pragma unroll 1
    for (int j = 0; j < kAhead; ++j) {
      const int t = converter_thread();
      const int r = t / kHalves + j * kStep;
      if (r < rows) prefetch_l1(acc + r * Sm90Bwd::kHeadDim + 8 * BwdTraits::dq_chunk((t % kHalves) / 2, m0 + r) + 4 * (t & 1));
    }
  }
#pragma unroll 1
  for (int r = converter_thread() / kHalves; r < rows; r += kStep) {
    const int t = converter_thread();
    const int c = (t % kHalves) / 2, e = t & 1;
    u32x2 out = {0u, 0u};
    if (!zero) {
      const int ra = r + kAhead * kStep;
      if (ra < rows) prefetch_l1(acc + ra * Sm90Bwd::kHeadDim + 8 * BwdTraits::dq_chunk(c, m0 + ra) + 4 * e);
      const u32x4 v = ld_ca_v4(acc + r * Sm90Bwd::kHeadDim + 8 * BwdTraits::dq_chunk(c, m0 + r) + 4 * e);
      out.x = ptx::pack2<Sm90Bwd::kBf16>(__uint_as_float(v.x) * f.scale, __uint_as_float(v.y) * f.scale);
      out.y = ptx::pack2<Sm90Bwd::kBf16>(__uint_as_float(v.z) * f.scale, __uint_as_float(v.w) * f.scale);
    }
    *reinterpret_cast<u32x2*>(dq + r * f.dq_stride_s + 8 * c + 4 * e) = out;
  }
}

// The converting warps: every unit of row r - lag this CTA owns, once that row's CTAs are all done
// (every lane acquires the count itself).
FC_DEVICE void run(const BwdParams& f, const Sm90BwdSmem& sm) {
  const int row = info(sm, 0) - f.convert_lag;
  if (row < 0) return;
  bool ready = false;
  int m = 0;
#pragma unroll 1
  for (int u = 0; u < info(sm, 2); ++u) {
    int count;
    if (unit_owner(f, u, m, count) == info(sm, 1)) {
      // Only a CTA that owns a unit with data waits (a causal row's short CTAs mostly own none).
      if (count > 0 && !ready) {
        wait_row_done(f, row);
        ready = true;
      }
      convert_block(f, sm, u / f.num_m_blocks, m, count == 0);
    }
    if (++m == f.num_m_blocks) m = 0;
  }
}

}  // namespace sm90::bwd::convert
