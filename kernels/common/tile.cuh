// Shared-memory tiles of 16-bit elements with an XOR swizzle on 16-byte chunks.
#pragma once
#include "types.cuh"

// A Rows x Cols tile of 16-bit values, row-major, each row padded to a multiple of 64 elements
// (8 chunks of 16 bytes, i.e. 128 bytes, one full pass over the 32 banks).
// The chunk index is XORed with (row & 7): the 8 rows that one ldmatrix phase reads at the same
// logical column then sit in 8 different 16-byte bank groups, so the phase is conflict-free, and
// cp.async writes of a row's consecutive chunks stay conflict-free too.
template <int Rows, int Cols>
struct SmemTile {
  static constexpr int kRows = Rows;
  static constexpr int kCols = Cols;
  static constexpr int kRowElems = (Cols + 63) / 64 * 64;
  static constexpr int kChunks = Cols / 8;  // logical 16-byte chunks per row
  static constexpr int kBytes = Rows * kRowElems * 2;
  static_assert(Cols % 8 == 0, "a row must be whole 16-byte chunks");
  static_assert(Rows % 8 == 0, "swizzle period is 8 rows");

  // Byte offset of element (row, col); col must be a multiple of 8 for 16-byte accesses.
  static FC_DEVICE u32 offset(int row, int col) {
    const int chunk = (col >> 3) ^ (row & 7);
    return (u32)((row * kRowElems + chunk * 8 + (col & 7)) * 2);
  }
};

// The shared-memory addresses one lane feeds to ldmatrix while a warp sweeps a tile in 16x16 steps.
// The lane's row satisfies row & 7 == lane-fixed and its chunk within a 16-element step is fixed
// (chunk_lo), so the swizzled chunk of step kk is (2kk) ^ (chunk_lo ^ row&7) =
// 8*(kk>>2) + ((2*(kk&3)) ^ x): four per-lane bases and compile-time offsets cover the whole sweep.
// Without this the compiler keeps one live address per (row step, column step) pair, which costs
// dozens of registers in the unrolled GEMMs.
template <class Tile>
struct LaneAddr {
  u32 base[4];

  FC_DEVICE LaneAddr(int row, int chunk_lo) {
    const int x = chunk_lo ^ (row & 7);
#pragma unroll
    for (int j = 0; j < 4; ++j) base[j] = (u32)(row * Tile::kRowElems * 2 + (((2 * j) ^ x) << 4));
  }

  // The same sweep starting chunk_off chunks (8 columns each) to the right, for a warp that
  // owns a column slice of the tile (the backward's dQ GEMM). Chunks past the 8-chunk swizzle
  // period keep their high bits: only the low three are XORed with the row.
  static FC_DEVICE LaneAddr with_chunk_offset(int row, int chunk_lo, int chunk_off) {
    LaneAddr a(row, chunk_lo);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int c = chunk_off + 2 * j + chunk_lo;
      a.base[j] = (u32)(row * Tile::kRowElems * 2 + (((c & ~7) | ((c ^ row) & 7)) << 4));
    }
    return a;
  }

  // Byte offset of the lane's element in row step r16 (16 rows each) and column step kk (16 columns each).
  // Both must be compile-time constants after unrolling.
  FC_DEVICE u32 at(int r16, int kk) const {
    return base[kk & 3] + (u32)((kk >> 2) * 128 + r16 * 16 * Tile::kRowElems * 2);
  }
};
