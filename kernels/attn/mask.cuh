// Score masking shared by every arch: keys past the end of the sequence, the causal triangle and
// the sliding window's lower bound.
#pragma once
#include "../common/types.cuh"

namespace attn {

// s holds one warp's 16 x (8*N8) block of scores in the mma C layout: s[j][0..1] are row g,
// s[j][2..3] row g+8, columns 8j + 2t + {0,1}. Masked scores become -inf, so exp2 turns them into 0.
// Key `col` is visible to query `row` iff col < seqlen_k, col <= row + causal_offset (Causal: the
// upper bound, which is also a sliding window's right edge) and col >= row + window_offset_left
// (Local: the window's left edge). Both kernels (sm80, sm90) mask through this one helper.
template <bool Causal, bool Local, int N8>
FC_DEVICE void apply_mask(float (&s)[N8][4], int n0, int row0, int seqlen_k, int causal_offset,
                          int window_offset_left, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < N8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int col = n0 + 8 * j + 2 * t + (e & 1);
      const int row = row0 + g + ((e >> 1) << 3);
      bool masked = col >= seqlen_k;
      if constexpr (Causal) masked = masked || col > row + causal_offset;
      if constexpr (Local) masked = masked || col < row + window_offset_left;
      if (masked) s[j][e] = kNegInf;
    }
  }
}

// Whether the key block [n0, n0 + block_n) needs apply_mask for the 16 rows row0 .. row0 + 15:
// it crosses seqlen_k or one of the diagonals somewhere in those rows.
template <bool Causal, bool Local>
FC_DEVICE bool block_needs_mask(int n0, int block_n, int row0, int seqlen_k, int causal_offset,
                                int window_offset_left) {
  bool need = n0 + block_n > seqlen_k;
  if constexpr (Causal) need = need || n0 + block_n - 1 > row0 + causal_offset;
  if constexpr (Local) need = need || n0 < row0 + 15 + window_offset_left;
  return need;
}

// The dense forward's form (no lower bound).
template <bool Causal, int N8>
FC_DEVICE void apply_mask(float (&s)[N8][4], int n0, int row0, int seqlen_k, int causal_offset, int lane) {
  apply_mask<Causal, false, N8>(s, n0, row0, seqlen_k, causal_offset, 0, lane);
}

// The backward's transposed block: s holds one warp's 16 keys x (8*N8) queries in the mma C layout
// (rows key0 + g and key0 + g + 8, columns q0 + 8j + 2t + {0,1}). Same rule as apply_mask: a key
// past the end, (Causal) a key after query + causal_offset or (Local) a key before query +
// window_offset_left becomes -inf. Queries past the end need no mask here: their LSE is +inf,
// which makes P = 0.
template <bool Causal, bool Local, int N8>
FC_DEVICE void apply_mask_kq(float (&s)[N8][4], int key0, int q0, int seqlen_k, int causal_offset,
                             int window_offset_left, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < N8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int key = key0 + g + ((e >> 1) << 3);
      const int query = q0 + 8 * j + 2 * t + (e & 1);
      bool masked = key >= seqlen_k;
      if constexpr (Causal) masked = masked || key > query + causal_offset;
      if constexpr (Local) masked = masked || key < query + window_offset_left;
      if (masked) s[j][e] = kNegInf;
    }
  }
}

// Whether the backward's block of 16 keys (key0 ..) x block_m queries (q0 ..) needs apply_mask_kq:
// it crosses seqlen_k or one of the diagonals somewhere in it. Warp-uniform.
template <bool Causal, bool Local>
FC_DEVICE bool block_needs_mask_kq(int key0, int q0, int block_m, int seqlen_k, int causal_offset,
                                   int window_offset_left) {
  bool need = key0 + 15 >= seqlen_k;
  if constexpr (Causal) need = need || key0 + 15 > q0 + causal_offset;
  if constexpr (Local) need = need || key0 < q0 + block_m - 1 + window_offset_left;
  return need;
}

}  // namespace attn
