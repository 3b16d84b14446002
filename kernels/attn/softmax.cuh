// Online softmax over key blocks (FlashAttention's recurrence), in the exp2 domain with the scale folded in.
#pragma once
#include "../common/config.cuh"
#include "../common/ptx/cvt.cuh"
#include "../common/types.cuh"

namespace attn {

constexpr float kLn2 = 0.6931471805599453f;

// Reductions over row r's values of an accumulator block (columns 2r, 2r+1 of each n8 tile), pairwise
// over halves: depth log2(2 * N8) instead of N8. N8 need not be a power of two.
template <int N8, int Lo = 0, int Len = N8>
struct RowTree {
  static FC_DEVICE float max(const float (&s)[N8][4], int r) {
    if constexpr (Len == 1) {
      return fmaxf(s[Lo][2 * r], s[Lo][2 * r + 1]);
    } else {
      return fmaxf(RowTree<N8, Lo, Len / 2>::max(s, r), RowTree<N8, Lo + Len / 2, Len - Len / 2>::max(s, r));
    }
  }
  static FC_DEVICE float sum(const float (&s)[N8][4], int r) {
    if constexpr (Len == 1) {
      return s[Lo][2 * r] + s[Lo][2 * r + 1];
    } else {
      return RowTree<N8, Lo, Len / 2>::sum(s, r) + RowTree<N8, Lo + Len / 2, Len - Len / 2>::sum(s, r);
    }
  }
};
template <int N8>
FC_DEVICE float tree_max(const float (&s)[N8][4], int r) {
  return RowTree<N8>::max(s, r);
}
template <int N8>
FC_DEVICE float tree_sum(const float (&s)[N8][4], int r) {
  return RowTree<N8>::sum(s, r);
}

// State for the two rows (g and g+8) a lane holds in the mma C layout. SumsElsewhere: the row
// sums come from the caller (sm90 kSumMma: P·V's extra columns of ones), so update() leaves l
// alone and the caller finishes with finish_sums().
template <int N8, bool SumsElsewhere = false>
struct OnlineSoftmax {
  float m[2];  // running max of raw scores (unscaled), -inf while no key was visible
  float l[2];  // running sum of exp2 terms over this lane's columns only; reduced across the quad once, at the end
  // FP8: probabilities come out multiplied by 2^kPShift, so that their cast to e4m3 keeps small ones
  // out of the subnormals; l carries the same factor, which cancels in O / l and is taken out of LSE.
  static constexpr float kPShift = Traits::kFp8 ? (float)Traits::kFp8PLog2 : 0.f;
  // Row max and row sum over the lane's 2 * N8 columns as trees (depth log2(2 * N8)) rather than
  // running chains (each of the N8 steps waits for the previous result): the chains sit on the
  // path between a block's Q·Kᵀ and its P·V. Measured on the H100 (bench/NOTES.md, session 7):
  // FP8 d128 +3% (its three serial consumers wait on that path), 16-bit d128 / d256 level, d64
  // -1.5% (16-bit and FP8), where the tree's live values cost more than the shorter chain saves.
  static constexpr bool kTree = Traits::kHeadDim >= 96;

  FC_DEVICE void init() {
    m[0] = m[1] = kNegInf;
    l[0] = l[1] = 0.f;
  }

  // Folds a new score block in: turns s into unnormalised probabilities in place and returns in
  // alpha the factor by which the O accumulator rows must be rescaled.
  FC_DEVICE void update(float (&s)[N8][4], float scale_log2, float (&alpha)[2]) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = m[r];
      if constexpr (kTree) {
        mx = fmaxf(mx, tree_max(s, r));
      } else {
#pragma unroll
        for (int j = 0; j < N8; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * r], s[j][2 * r + 1]));
      }
      // The 4 lanes of a quad hold one row between them.
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      // The exponentials are taken against a stale max as long as the new one exceeds it by at
      // most kRescaleSlack (log2 units): probabilities then reach 2^slack, harmless in fp32 sums
      // and 16-bit P, and alpha stays exactly 1, so the O rows need no rescale. O / l and the LSE
      // are the same for any reference (FlashAttention-4 uses the same slack). mx >= m[r]; the
      // test is false while m[r] is -inf (inf or NaN difference), and quad-uniform like mx.
      float base;
      if ((mx - m[r]) * scale_log2 <= Traits::kRescaleSlack) {
        base = m[r] * scale_log2;
        alpha[r] = 1.f;
      } else {
        // A row that has seen no visible key keeps base 0, so exp2(-inf - base) is 0, not NaN.
        base = mx == kNegInf ? 0.f : mx * scale_log2;
        alpha[r] = ptx::exp2f_fast(m[r] * scale_log2 - base);
        m[r] = mx;
      }
      const float nb = kPShift - base;
#pragma unroll
      for (int j = 0; j < N8; ++j) {
        const float x0 = fmaf(s[j][2 * r], scale_log2, nb), x1 = fmaf(s[j][2 * r + 1], scale_log2, nb);
        if (Traits::kExp2PolyEvery > 0 && j % Traits::kExp2PolyEvery == Traits::kExp2PolyEvery - 1) {
          s[j][2 * r] = ptx::exp2f_poly<Traits::kBf16>(x0);
          s[j][2 * r + 1] = ptx::exp2f_poly<Traits::kBf16>(x1);
        } else {
#if defined(FC_SM90_PROBE) && (FC_SM90_PROBE & 1)
          s[j][2 * r] = x0, s[j][2 * r + 1] = x1;  // timing probe (consumer.cuh): no MUFU
#else
          s[j][2 * r] = ptx::exp2f_fast(x0);
          s[j][2 * r + 1] = ptx::exp2f_fast(x1);
#endif
        }
      }
      if constexpr (!SumsElsewhere) {
        float sum = 0.f;
        if constexpr (kTree) {
          sum = tree_sum(s, r);
        } else {
#pragma unroll
          for (int j = 0; j < N8; ++j) sum += s[j][2 * r] + s[j][2 * r + 1];
        }
        l[r] = l[r] * alpha[r] + sum;
      }
    }
  }

  // Completes the row sums across the quad; returns 1/l (0 for a row with no visible key) and the
  // natural-log LSE (-inf for such a row).
  FC_DEVICE void finish(float scale_log2, float (&inv_l)[2], float (&lse)[2]) {
    float sums[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = l[r];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      sums[r] = sum;
    }
    finish_sums(scale_log2, sums, inv_l, lse);
  }

  // The same from whole-row sums (both rows' over every key, in the units of this state's max).
  FC_DEVICE void finish_sums(float scale_log2, const float (&sums)[2], float (&inv_l)[2], float (&lse)[2]) const {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float sum = sums[r];
      // A row that saw no visible key keeps max -inf (its polynomial exponentials are ~1e-38, not
      // 0, so the sum alone would not tell). A row of NaN scores also keeps max -inf (fmaxf skips
      // NaN) but has a NaN sum: it stays NaN in O and LSE.
      const bool empty = (m[r] == kNegInf && sum == sum) || sum == 0.f;
      inv_l[r] = empty ? 0.f : 1.f / sum;
      lse[r] = empty ? kNegInf : (m[r] * scale_log2 + ptx::log2f_fast(sum) - kPShift) * kLn2;
    }
  }
};

// Attention sink (params.cuh FwdParams::sinks): a logit `sink`, in the LSE's natural-log units,
// that joins the row's softmax denominator with a zero value. O scales by e^lse / (e^lse + e^sink)
// and the LSE becomes log(e^lse + e^sink); a row that saw no key keeps O = 0 and gets LSE = sink.
// A NaN row stays NaN.
FC_DEVICE void add_sink(float sink, float (&inv_l)[2], float (&lse)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float m = fmaxf(lse[r], sink);
    if (m == kNegInf) continue;  // no visible key and a -inf sink: nothing to add
    const float total = m + __logf(__expf(lse[r] - m) + __expf(sink - m));
    inv_l[r] *= __expf(lse[r] - total);
    lse[r] = total;
  }
}

}  // namespace attn
