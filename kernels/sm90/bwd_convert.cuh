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
// launched before row r's first one (launch order is key block fastest, then row; in causal
// kernels with sections, which only the end and staged converters are built into, the host keeps
// the lag at least a section long, so the two rows are in different sections, launched one after
// the other: plan/backward.rs sm90_bwd_row_lag), so the wait cannot deadlock, and with a lag of
// about one wave of rows they have usually finished by then. Rows from convert_rows on (the last lag rows) are left
// to bwd/post.cu.
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
// block m) among them, as the header describes; every converter walks the units this way.
FC_DEVICE int unit_owner(const BwdParams& f, int u, int m, int& count) {
  count = BwdTraits::n_blocks_visiting(m, f.num_n_blocks, f.causal_offset, f.window_offset_left);
  return count > 0 ? BwdTraits::first_n_block(m, f.window_offset_left) + u % count : u % f.num_n_blocks;
}

// Until every CTA of grid row `row` has counted itself done (acquire).
FC_DEVICE void wait_row_done(const BwdParams& f, int row) {
  while (ptx::ld_acquire_u32(reinterpret_cast<const u32*>(f.dq_sem) + row) < (u32)f.num_n_blocks) __nanosleep(500);
}

// The shared-memory converters' copying thread, before its first copy: the row is done, and its
// copies (async proxy) read what the row's bulk reduces wrote after this acquire. The other
// threads only read shared memory after the copies' mbarriers, so they do not wait here.
FC_DEVICE void copier_waits_for_row(const BwdParams& f, int row) {
  wait_row_done(f, row);
  ptx::fence_proxy_async_global();
}

// The accumulator tile of (batch b, query head h, query block m): block_m x head dim, contiguous.
FC_DEVICE const float* acc_tile(const BwdParams& f, int b, int h, int m) {
  return reinterpret_cast<const float*>(f.dq_accum) +
         (((i64)b * f.heads + h) * f.num_m_blocks + m) * (i64)(Sm90Bwd::kBlockM * Sm90Bwd::kHeadDim);
}

// 16 bytes of fp32 at shared address `src` (4 values of a chunk half), scaled, to 8 bytes of dQ.
FC_DEVICE void convert_16b(const BwdParams& f, u32 src, u16* dst) {
  u32 v0, v1, v2, v3;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n" : "=r"(v0), "=r"(v1), "=r"(v2), "=r"(v3) : "r"(src));
  u32x2 out;
  out.x = ptx::pack2<Sm90Bwd::kBf16>(__uint_as_float(v0) * f.scale, __uint_as_float(v1) * f.scale);
  out.y = ptx::pack2<Sm90Bwd::kBf16>(__uint_as_float(v2) * f.scale, __uint_as_float(v3) * f.scale);
  *reinterpret_cast<u32x2*>(dst) = out;
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
  // (acc_tile's address, written out: through acc_tile ptxas spilled in four default kernels.)
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

// ---- Sm90Bwd::kConvertEnd (FLASHCORE_SM90_BWD_CONVERT_END=1; not yet measured) ----
// The loads above are bound by their latency (24-register threads hold one 16-byte load each), so
// converting took about as long as the CTA's own work at S1K (bench/NOTES.md session 21). Here the
// converting warps wait until the CTA's last bulk reduce has read the dQ buffers, then bring each
// owned unit's fp32 tile (block_m x head dim, one dQ buffer: contiguous in the accumulator) into
// dQ buffer 0 with one bulk copy and convert it from shared memory, while the consumers write dK
// and dV. Same rows, lag and owners as run().
constexpr int kBarDqFree = 10;  // the consumers' issuing warp (arrives) and warps 1 .. 3 (32 + 96)
constexpr int kBarConv = 11;    // warps 1 .. 3: dQ buffer 0 read, the next copy may overwrite it

// Unit (hi, m) from dQ buffer 0: 16 bytes of fp32 a turn (4 values of a chunk half), 8 bytes out.
FC_DEVICE void convert_smem(const BwdParams& f, const Sm90BwdSmem& sm, int hi, int m) {
  int b, h;
  converted_head(f, sm, hi, b, h);
  const int m0 = m * Sm90Bwd::kBlockM;
  u16* dq = reinterpret_cast<u16*>(f.dq) + b * f.dq_stride_b + h * f.dq_stride_h + m0 * f.dq_stride_s;
  constexpr int kQuarters = Sm90Bwd::kHeadDim / 4;  // 16-byte pieces of a row
  const int pieces = min(Sm90Bwd::kBlockM, f.seqlen_q - m0) * kQuarters;
#pragma unroll 1
  for (int i = converter_thread(); i < pieces; i += kThreads) {
    const int r = i / kQuarters, c = (i % kQuarters) / 2, e = i & 1;
    const u32 src = sm.dq(0) + 4 * (r * Sm90Bwd::kHeadDim + 8 * BwdTraits::dq_chunk(c, m0 + r) + 4 * e);
    convert_16b(f, src, dq + r * f.dq_stride_s + 8 * c + 4 * e);
  }
}

FC_DEVICE void run_end(const BwdParams& f, const Sm90BwdSmem& sm) {
  ptx::named_bar_sync(kBarDqFree, 32 + kThreads);
  const int row = info(sm, 0) - f.convert_lag;
  if (row < 0) return;
  bool ready = false;
  u32 phase = 0;
  int m = 0;
#pragma unroll 1
  for (int u = 0; u < info(sm, 2); ++u) {
    int count;
    if (unit_owner(f, u, m, count) == info(sm, 1)) {
      if (count == 0) {
        convert_block(f, sm, u / f.num_m_blocks, m, true);
      } else {
        if (!ready && converter_thread() == 0) copier_waits_for_row(f, row);
        ready = true;
        if (converter_thread() == 0) {
          // (Inline rather than converted_head(): through it ptxas spilled in two causal kernels.)
          const int ny = (int)gridDim.y;
          const int b = row / ny, y = row - b * ny;
          const int group = f.heads / f.kv_heads;
          const int h = (y / f.kv_splits) * group + (y % f.kv_splits) * (group / f.kv_splits) + u / f.num_m_blocks;
          ptx::mbar_arrive_expect_tx(sm.conv_full(), Sm90Bwd::kDqBytes);
          ptx::bulk_load(sm.dq(0), acc_tile(f, b, h, m), Sm90Bwd::kDqBytes, sm.conv_full());
        }
        ptx::mbar_wait(sm.conv_full(), phase);
        phase ^= 1;
        convert_smem(f, sm, u / f.num_m_blocks, m);
        ptx::named_bar_sync(kBarConv, kThreads);
      }
    }
    if (++m == f.num_m_blocks) m = 0;
  }
}

// ---- Sm90Bwd::kConvertStaged (FLASHCORE_SM90_BWD_CONVERT_STAGED=1; not yet measured) ----
// As run(), while the consumers compute, but the accumulator's rows come into a ring of
// kStageBufs staging buffers (kStageRows rows each, past the tiles) by bulk copies that one thread
// keeps a ring ahead, and are converted from shared memory: the copies hold no registers, so the
// 24-register threads are no longer bound by one 16-byte load's round trip each (run's cost: the
// conversion extended the CTA at S1K, bench/NOTES.md session 21), and unlike run_end nothing waits
// for the CTA's end. Same rows, lag and owners as run(); kBarConv marks a buffer read.

// The tile of unit (query head hi, query block m) of the converted row, for the converters' first
// thread: its accumulator (block_m x head dim, contiguous), dQ address and first query row, into
// Sm90BwdSmem::stage_info, where the other threads read them after their first buffer's wait
// (mbarrier arrive releases, its wait acquires). In shared memory rather than registers: the
// 24-register threads spilled when the loops below kept them (or the unit's index) live.
FC_DEVICE void stage_unit(const BwdParams& f, const Sm90BwdSmem& sm, int hi, int m) {
  int b, h;
  converted_head(f, sm, hi, b, h);
  const int m0 = m * Sm90Bwd::kBlockM;
  u16* dq = reinterpret_cast<u16*>(f.dq) + b * f.dq_stride_b + h * f.dq_stride_h + m0 * f.dq_stride_s;
  ptx::st_shared_u64(sm.stage_info(0), reinterpret_cast<u64>(acc_tile(f, b, h, m)));
  ptx::st_shared_u64(sm.stage_info(1), reinterpret_cast<u64>(dq));
  ptx::st_shared_u32(sm.stage_info(2), (u32)m0);
}

// Rows j * kStageRows .. of the staged tile into staging buffer `buf` (the first thread).
FC_DEVICE void stage_copy(const Sm90BwdSmem& sm, int j, int buf) {
  const float* src = reinterpret_cast<const float*>(ptx::ld_shared_u64(sm.stage_info(0))) +
                     j * (Sm90Bwd::kStageRows * Sm90Bwd::kHeadDim);
  ptx::mbar_arrive_expect_tx(sm.stage_full(buf), Sm90Bwd::kStageBytes);
  ptx::bulk_load(sm.stage(buf), src, Sm90Bwd::kStageBytes, sm.stage_full(buf));
}

// Those rows from staging buffer `buf` to dQ: 16 bytes of fp32 a turn, 8 bytes out.
FC_DEVICE void convert_stage(const BwdParams& f, const Sm90BwdSmem& sm, int j, int buf) {
  constexpr int kQuarters = Sm90Bwd::kHeadDim / 4;  // 16-byte pieces of a row
  const int r0 = (int)ptx::ld_shared_u32(sm.stage_info(2)) + j * Sm90Bwd::kStageRows;
  const int pieces = min(Sm90Bwd::kStageRows, f.seqlen_q - r0) * kQuarters;
#pragma unroll 1
  for (int i = converter_thread(); i < pieces; i += kThreads) {
    const int r = i / kQuarters, c = (i % kQuarters) / 2, e = i & 1;
    const u32 src = sm.stage(buf) + 4 * (r * Sm90Bwd::kHeadDim + 8 * BwdTraits::dq_chunk(c, r0 + r) + 4 * e);
    u16* dq = reinterpret_cast<u16*>(ptx::ld_shared_u64(sm.stage_info(1)));
    convert_16b(f, src, dq + (r + j * Sm90Bwd::kStageRows) * f.dq_stride_s + 8 * c + 4 * e);
  }
}

// Every owned tile is copied whole (the accumulator is padded to whole query blocks; rows past
// seqlen_q are not stored), so each tile takes the ring round the same even number of times
// (Sm90Bwd::kStageRows is chosen so) and each buffer's mbarrier is back at phase parity 0 when the
// next tile starts: a piece's buffer and phase follow from its index alone, no count carried
// across tiles (with one, the 24-register threads spilled).
FC_DEVICE void run_staged(const BwdParams& f, const Sm90BwdSmem& sm) {
  constexpr int kBufs = Sm90Bwd::kStageBufs;
  constexpr int kPieces = Sm90Bwd::kBlockM / Sm90Bwd::kStageRows;
  static_assert(!Sm90Bwd::kConvertStaged || kPieces % (2 * kBufs) == 0,
                "a tile must take the staging ring round an even number of times");
  if (info(sm, 0) < f.convert_lag) return;
  bool ready = false;
  int m = 0;
#pragma unroll 1
  for (int u = 0; u < info(sm, 2); ++u) {
    int count;
    if (unit_owner(f, u, m, count) == info(sm, 1)) {
      if (count == 0) {
        convert_block(f, sm, u / f.num_m_blocks, m, true);
      } else {
        if (!ready && converter_thread() == 0) copier_waits_for_row(f, info(sm, 0) - f.convert_lag);
        ready = true;
        // The ring's buffers and stage_info were all read (the last meeting below): the first
        // thread may rewrite them.
        if (converter_thread() == 0) {
          stage_unit(f, sm, u / f.num_m_blocks, m);
#pragma unroll 1
          for (int j = 0; j < kBufs; ++j) stage_copy(sm, j, j);
        }
#pragma unroll 1
        for (int j = 0; j < kPieces; ++j) {
          ptx::mbar_wait(sm.stage_full(j % kBufs), (j / kBufs) & 1);
          convert_stage(f, sm, j, j % kBufs);
          ptx::named_bar_sync(kBarConv, kThreads);
          if (converter_thread() == 0 && j + kBufs < kPieces) stage_copy(sm, j + kBufs, j % kBufs);
        }
      }
    }
    if (++m == f.num_m_blocks) m = 0;
  }
}

}  // namespace sm90::bwd::convert
