// Logit softcap (Gemma 2, Grok): a score s becomes cap * tanh(s * scale / cap), bounding every logit
// to (-cap, cap). The host folds the factors: softcap_pre = scale / cap multiplies the raw score
// here, and scale_log2 = cap * log2(e) is what the online softmax then multiplies by, so the
// softmax itself is unchanged. Apply before masking: tanh(-inf) would be -1, not -inf.
#pragma once
#include "../common/ptx/cvt.cuh"
#include "../common/types.cuh"

namespace attn {

template <int N8>
FC_DEVICE void apply_softcap(float (&s)[N8][4], float softcap_pre) {
#pragma unroll
  for (int j = 0; j < N8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) s[j][e] = ptx::tanhf_fast(s[j][e] * softcap_pre);
  }
}

}  // namespace attn
