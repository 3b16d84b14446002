// The only reader of FC_* macros. Every other file reads Traits.
#pragma once
#include "types.cuh"

#ifndef FC_HEAD_DIM
#error "FC_HEAD_DIM must be defined by the planner"
#endif
#ifndef FC_BLOCK_M
#error "FC_BLOCK_M must be defined by the planner"
#endif
#ifndef FC_BLOCK_N
#error "FC_BLOCK_N must be defined by the planner"
#endif
#ifndef FC_DTYPE_BF16
#error "FC_DTYPE_BF16 must be defined by the planner (0 = fp16, 1 = bf16)"
#endif
#ifndef FC_CAUSAL
#error "FC_CAUSAL must be defined by the planner"
#endif
// FC_CAUSAL: keys have an upper bound (j <= i + causal_offset; also a sliding window's right
// edge). FC_LOCAL: a lower bound too (j >= i + window_offset_left). FC_SOFTCAP: tanh logit cap.
#ifndef FC_LOCAL
#define FC_LOCAL 0
#endif
#ifndef FC_SOFTCAP
#define FC_SOFTCAP 0
#endif
// FC_INFER: the inference paths' params may be set (varlen cu_seqlens, seqused_k, paged K/V, split-KV
// partials); dense variants compile without their per-tile lookups.
#ifndef FC_INFER
#define FC_INFER 0
#endif
// FC_COMBINE_MERGE (attn/combine.cu): merge two 16-bit partial outputs instead of fp32 split partials.
#ifndef FC_COMBINE_MERGE
#define FC_COMBINE_MERGE 0
#endif
#ifndef FC_STAGES
#define FC_STAGES 2
#endif
#ifndef FC_MIN_BLOCKS
#define FC_MIN_BLOCKS 1
#endif
#ifndef FC_EXP2_POLY
#define FC_EXP2_POLY 0
#endif
// FP8 forward (sm90 only): q, k, v in e4m3; FC_DTYPE_BF16 then names the output dtype.
#ifndef FC_FP8
#define FC_FP8 0
#endif
// log2 of the static factor P is multiplied by before its cast to e4m3 (P <= 2^FC_RESCALE_SLACK,
// e4m3's largest finite value is 448): 8 keeps probabilities down to 2^-17 representable instead
// of 2^-9. The planner sets both (plan/knobs.rs FP8_P_LOG2).
#ifndef FC_FP8_P_LOG2
#define FC_FP8_P_LOG2 8
#endif
// Online softmax: a row's reference max moves only when the block max exceeds it by more than
// FC_RESCALE_SLACK in log2 units, so probabilities reach up to 2^slack and most blocks skip the
// O rescale (sm90 consumer.cuh `rescale` tests for alpha == 1). Unset: 8 for 16-bit P; for FP8,
// whose P carries 2^FC_FP8_P_LOG2 already, what is left of e4m3's range.
#ifndef FC_RESCALE_SLACK
#define FC_RESCALE_SLACK (FC_FP8 ? 8 - FC_FP8_P_LOG2 : 8)
#endif

struct Traits {
  static constexpr int kHeadDim = FC_HEAD_DIM;
  static constexpr int kBlockM = FC_BLOCK_M;
  static constexpr int kBlockN = FC_BLOCK_N;
  static constexpr bool kBf16 = FC_DTYPE_BF16 != 0;
  static constexpr bool kCausal = FC_CAUSAL != 0;
  static constexpr bool kLocal = FC_LOCAL != 0;
  static constexpr bool kSoftcap = FC_SOFTCAP != 0;
  static constexpr bool kInfer = FC_INFER != 0;
  static constexpr bool kCombineMerge = FC_COMBINE_MERGE != 0;
  static constexpr int kMinBlocksPerSm = FC_MIN_BLOCKS;
  // Softmax: every kExp2PolyEvery-th group of 8 score columns takes its exponentials from a
  // polynomial on the FMA pipe instead of MUFU (0: all on MUFU). See ptx::exp2f_poly.
  static constexpr int kExp2PolyEvery = FC_EXP2_POLY;
  static constexpr bool kFp8 = FC_FP8 != 0;
  static constexpr int kFp8PLog2 = FC_FP8_P_LOG2;
  static constexpr float kRescaleSlack = (float)FC_RESCALE_SLACK;
  static_assert(!kFp8 || FC_RESCALE_SLACK + FC_FP8_P_LOG2 <= 8, "FP8 P must stay within e4m3's 448");

  // One warp owns 16 query rows (the M of one m16n8k16 MMA).
  static constexpr int kWarps = kBlockM / 16;
  static constexpr int kThreads = kWarps * 32;
  // K/V ring depth. With 2 stages every iteration ends in a barrier (the next prefetch overwrites
  // the stage just read); with 3 the barrier after the wait of the following iteration already
  // orders the reuse, so warps may drift apart and one warp's softmax overlaps another's MMAs.
  static constexpr int kStages = FC_STAGES;
  // The Hopper ring (mbarriers per stage) takes any depth; up to 6 for tuning runs.
  static_assert(kStages >= 2 && kStages <= 6, "K/V ring depth must be 2 to 6");

  static_assert(kHeadDim % 16 == 0 && kHeadDim >= 16 && kHeadDim <= 256,
                "head dim must be a multiple of 16 in [16, 256] (MMA K step)");
  static_assert(kBlockM % 16 == 0 && kWarps >= 1 && kWarps <= 16, "block_m must be 16 * warps");
  static_assert(kBlockN % 16 == 0, "block_n must be a multiple of 16 (PV's K step)");
};
