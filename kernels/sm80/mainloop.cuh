// sm80 mainloop stages: cp.async tile loads and the two warp-level GEMMs (S = Q Kᵀ, O += P V).
#pragma once
#include "../common/ptx/cp_async.cuh"
#include "../common/ptx/cvt.cuh"
#include "../common/ptx/ldmatrix.cuh"
#include "../common/ptx/mma.cuh"
#include "../common/tile.cuh"

namespace sm80 {

// Cooperative copy of a Rows x Cols tile (row r at g + r*row_stride) into a swizzled smem tile.
// Rows at or past rows_valid are zero-filled, so padded keys give finite scores (masked later) and
// padded V rows contribute 0 * 0 rather than 0 * garbage.
template <class Tile, int Threads>
FC_DEVICE void load_tile(u32 smem, const u16* g, i64 row_stride, int rows_valid, int tid) {
  constexpr int kTotal = Tile::kRows * Tile::kChunks;
  constexpr int kIters = (kTotal + Threads - 1) / Threads;
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const int c = tid + i * Threads;
    if (kTotal % Threads == 0 || c < kTotal) {
      const int row = c / Tile::kChunks;
      const int col = (c % Tile::kChunks) * 8;
      const bool valid = row < rows_valid;
      const u16* src = valid ? g + row * row_stride + col : g;
      ptx::cp_async_16(smem + Tile::offset(row, col), src, valid);
    }
  }
}

// K and V of one block (same rows, own strides), as two load_tile calls would, but walking each
// thread's rows with running addresses: a thread's chunks are kRowStep rows apart in the same column,
// so the next chunk is one add away in both memories. Written with load_tile's per-chunk offsets,
// the compiler hoists every chunk's 64-bit offset out of the main loop, which costs the d 128
// tiles their last registers.
template <class Tile, int Threads>
FC_DEVICE void load_kv(u32 sk, u32 sv, const u16* k, i64 k_stride, const u16* v, i64 v_stride, int rows_valid,
                       int tid) {
  constexpr int kRowStep = Threads / Tile::kChunks;
  // Needs whole rows per thread pass, a tile of whole passes and (the swizzle repeats every 8 rows)
  // a step of 8 rows or more, so each chunk's smem offset is the first one's plus a constant.
  if constexpr (Threads % Tile::kChunks != 0 || kRowStep % 8 != 0 || Tile::kRows % kRowStep != 0) {
    // Other shapes (head dims that are not a multiple of 64, few threads): each chunk's row and
    // column from its index, in a loop the compiler cannot hoist per-chunk offsets out of.
    constexpr int kTotal = Tile::kRows * Tile::kChunks;
#pragma unroll 1
    for (int c = tid; c < kTotal; c += Threads) {
      const int row = c / Tile::kChunks, col = (c % Tile::kChunks) * 8;
      const bool valid = row < rows_valid;
      ptx::cp_async_16(sk + Tile::offset(row, col), valid ? k + row * k_stride + col : k, valid);
      ptx::cp_async_16(sv + Tile::offset(row, col), valid ? v + row * v_stride + col : v, valid);
    }
  } else {
    const int row = tid / Tile::kChunks, col = (tid % Tile::kChunks) * 8;
    const u32 so = Tile::offset(row, col);
    const u16* kg = k + row * k_stride + col;
    const u16* vg = v + row * v_stride + col;
#pragma unroll
    for (int i = 0; i < Tile::kRows / kRowStep; ++i) {
      const bool valid = row + i * kRowStep < rows_valid;
      constexpr u32 kStepBytes = kRowStep * Tile::kRowElems * 2;
      ptx::cp_async_16(sk + so + i * kStepBytes, valid ? kg : k, valid);
      ptx::cp_async_16(sv + so + i * kStepBytes, valid ? vg : v, valid);
      kg += kRowStep * k_stride;
      vg += kRowStep * v_stride;
    }
  }
}

// Paged K and V: key n0 + r of the block lives in pool page table[(n0 + r) / page_size] at slot
// (n0 + r) % page_size, so each row has its own address. K and V share the table, so one lookup
// (a cached int32 load and a division) serves the same 16-byte chunk of both tiles; page sizes
// smaller than the tile's rows work the same way. k and v point at the kv head's slice of page 0.
template <class Tile, int Threads>
FC_DEVICE void load_kv_paged(u32 sk, u32 sv, const u16* k, const u16* v, i64 k_page_stride, i64 k_row_stride,
                             i64 v_page_stride, i64 v_row_stride, const int* table, int page_size, int n0,
                             int rows_valid, int tid) {
  constexpr int kTotal = Tile::kRows * Tile::kChunks;
  constexpr int kIters = (kTotal + Threads - 1) / Threads;
  // Not unrolled: unrolled, the compiler keeps each iteration's row and smem offsets live across the
  // main loop, which costs the d 128 tiles their last registers.
#pragma unroll 1
  for (int i = 0; i < kIters; ++i) {
    const int c = tid + i * Threads;
    if (kTotal % Threads == 0 || c < kTotal) {
      const int row = c / Tile::kChunks;
      const int col = (c % Tile::kChunks) * 8;
      const bool valid = row < rows_valid;
      const u16* ks = k;
      const u16* vs = v;
      if (valid) {
        const int key = n0 + row;
        const int page_idx = key / page_size;
        const i64 page = table[page_idx];
        const i64 slot = key - page_idx * page_size;
        ks = k + page * k_page_stride + slot * k_row_stride + col;
        vs = v + page * v_page_stride + slot * v_row_stride + col;
      }
      ptx::cp_async_16(sk + Tile::offset(row, col), ks, valid);
      ptx::cp_async_16(sv + Tile::offset(row, col), vs, valid);
    }
  }
}

// S (16 x BlockN, this warp's rows) = Q[warp rows] · K[tile]ᵀ, both operands read with ldmatrix.
// qa/ka are the lane's ldmatrix addresses (see LaneAddr), made once per CTA by lane_addr_*().
template <class QTile, class KTile, bool Bf16>
FC_DEVICE void gemm_qk(float (&s)[KTile::kRows / 8][4], u32 sq, const LaneAddr<QTile>& qa, u32 sk,
                       const LaneAddr<KTile>& ka) {
  constexpr int kN8 = KTile::kRows / 8;
#pragma unroll
  for (int j = 0; j < kN8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < QTile::kCols / 16; ++kk) {
    u32 a[4];
    ptx::warp::ldmatrix_x4(a, sq + qa.at(0, kk));
#pragma unroll
    for (int np = 0; np < kN8 / 2; ++np) {
      u32 b[4];
      ptx::warp::ldmatrix_x4(b, sk + ka.at(np, kk));
      ptx::warp::mma_16816<Bf16>(s[2 * np], a, b[0], b[1]);
      ptx::warp::mma_16816<Bf16>(s[2 * np + 1], a, b[2], b[3]);
    }
  }
}

// A operand (Q): lanes 0-15 address rows 0-15 of the warp's slice at k0, lanes 16-31 the same rows at k0+8.
template <class QTile>
FC_DEVICE LaneAddr<QTile> lane_addr_q(int warp, int lane) {
  return LaneAddr<QTile>(warp * 16 + (lane & 15), lane >> 4);
}

// B operand of Q·Kᵀ (K stored key-major is its column-major B): matrices (n 0-7, k0) (n 0-7, k0+8)
// (n 8-15, k0) (n 8-15, k0+8), so registers {0,1} feed n-tile 2np and {2,3} n-tile 2np+1.
template <class KTile>
FC_DEVICE LaneAddr<KTile> lane_addr_k(int lane) {
  return LaneAddr<KTile>((lane & 7) + ((lane >> 4) << 3), (lane >> 3) & 1);
}

// B operand of P·V (V stored key-major is its row-major B, read with ldmatrix.trans): matrices
// (keys 0-7, d0) (keys 8-15, d0) (keys 0-7, d0+8) (keys 8-15, d0+8).
template <class VTile>
FC_DEVICE LaneAddr<VTile> lane_addr_v(int lane) {
  return LaneAddr<VTile>((lane & 7) + (((lane >> 3) & 1) << 3), lane >> 4);
}

// O (16 x HeadDim) += P · V. P comes straight from the S accumulators: the C layout of two adjacent
// n8 tiles is exactly the A layout of one k16 step, so no shared-memory round trip is needed.
template <class VTile, bool Bf16>
FC_DEVICE void gemm_pv(float (&o)[VTile::kCols / 8][4], const float (&p)[VTile::kRows / 8][4], u32 sv,
                       const LaneAddr<VTile>& va) {
#pragma unroll
  for (int kk = 0; kk < VTile::kRows / 16; ++kk) {
    u32 a[4];
    a[0] = ptx::pack2<Bf16>(p[2 * kk][0], p[2 * kk][1]);
    a[1] = ptx::pack2<Bf16>(p[2 * kk][2], p[2 * kk][3]);
    a[2] = ptx::pack2<Bf16>(p[2 * kk + 1][0], p[2 * kk + 1][1]);
    a[3] = ptx::pack2<Bf16>(p[2 * kk + 1][2], p[2 * kk + 1][3]);
#pragma unroll
    for (int dp = 0; dp < VTile::kCols / 16; ++dp) {
      u32 b[4];
      ptx::warp::ldmatrix_x4_trans(b, sv + va.at(kk, dp));
      ptx::warp::mma_16816<Bf16>(o[2 * dp], a, b[0], b[1]);
      ptx::warp::mma_16816<Bf16>(o[2 * dp + 1], a, b[2], b[3]);
    }
  }
}

}  // namespace sm80
