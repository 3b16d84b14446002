// Score masking shared by every arch: keys past the end of the sequence, and the causal triangle.
#pragma once
#include "../common/types.cuh"

namespace attn {

// s holds one warp's 16 x (8*N8) block of scores in the mma C layout: s[j][0..1] are row g,
// s[j][2..3] row g+8, columns 8j + 2t + {0,1}. Masked scores become -inf, so exp2 turns them into 0.
template <bool Causal, int N8>
FC_DEVICE void apply_mask(float (&s)[N8][4], int n0, int row0, int seqlen_k, int causal_offset, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < N8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int col = n0 + 8 * j + 2 * t + (e & 1);
      const int row = row0 + g + ((e >> 1) << 3);
      bool masked = col >= seqlen_k;
      if constexpr (Causal) masked = masked || col > row + causal_offset;
      if (masked) s[j][e] = kNegInf;
    }
  }
}

// The backward's transposed block: s holds one warp's 16 keys x (8*N8) queries in the mma C layout
// (rows key0 + g and key0 + g + 8, columns q0 + 8j + 2t + {0,1}). Same rule as apply_mask: a key
// past the end, or (causal) a key after query + causal_offset, becomes -inf. Queries past the end
// need no mask here: their LSE is +inf, which makes P = 0.
template <bool Causal, int N8>
FC_DEVICE void apply_mask_kq(float (&s)[N8][4], int key0, int q0, int seqlen_k, int causal_offset, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < N8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int key = key0 + g + ((e >> 1) << 3);
      const int query = q0 + 8 * j + 2 * t + (e & 1);
      bool masked = key >= seqlen_k;
      if constexpr (Causal) masked = masked || key > query + causal_offset;
      if (masked) s[j][e] = kNegInf;
    }
  }
}

}  // namespace attn
