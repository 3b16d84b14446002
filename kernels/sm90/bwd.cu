// Backward attention for Hopper (sm_90a), step 2 of 3 (bwd/prep.cu before, bwd/post.cu after):
// FlashAttention-3's design. One CTA per (key block of 128, kv head, batch): a producer warpgroup
// whose one thread issues TMA loads (K and V once, then Q, dO, lse2 and dsum per step into a
// two-stage mbarrier ring), and two consumer warpgroups of 64 keys each running wgmma, with dK and
// dV in registers and dQ added to an fp32 accumulator (red.global from registers, or with
// FLASHCORE_SM90_BWD_DQ_SMEM=1 through shared memory and a bulk reduce). setmaxnreg moves the
// registers to the consumers. Roles only here; the stages live in bwd_producer / bwd_consumer.cuh.
#include "../common/params.cuh"
#include "bwd_config.cuh"
#include "bwd_consumer.cuh"
#include "bwd_convert.cuh"
#include "bwd_producer.cuh"
#include "bwd_smem.cuh"
#include "bwd_zero.cuh"

FC_EXPORT_SMEM_BYTES(Sm90Bwd::kSmemBytes);

extern "C" __global__ void __launch_bounds__(Sm90Bwd::kThreads, 1)
    fc_bwd_sm90(const __grid_constant__ Sm90BwdParams p) {
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const Sm90BwdSmem sm(smem_raw);
  const sm90::bwd::Work work(p.base);
  const int warpgroup = threadIdx.x / 128;

  if (threadIdx.x == 0) {
    ptx::mbar_init(sm.kv_full(), 1);
    for (int s = 0; s < Sm90Bwd::kStages; ++s) {
      ptx::mbar_init(sm.q_full(s), 1);
      ptx::mbar_init(sm.q_empty(s), sm90::bwd::consumer::kThreads);
    }
    ptx::fence_barrier_init();
    ptx::st_shared_u32(sm.cta_info(0), (u32)work.grid_row(p.base));
    ptx::st_shared_u32(sm.cta_info(1), (u32)work.n_block);
    ptx::st_shared_u32(sm.cta_info(2), (u32)(p.base.heads / p.base.kv_heads / p.base.kv_splits * p.base.num_m_blocks));
  }
  __syncthreads();

  if (warpgroup == 0) {
    ptx::setmaxnreg_dec<Sm90Bwd::kProducerRegs>();
    // A CTA whose keys no query sees (causal) loads nothing: its consumers only write zeros.
    if (threadIdx.x == 0 && work.steps > 0) sm90::bwd::producer::run(p, sm, work);
    // Warps 1 .. 3 otherwise idle: first the zeros of a later grid row's dQ accumulator, when the
    // kernel zeroes it (every shared-memory dQ kernel), then dQ of an earlier grid row, when the
    // kernel converts it. (Zeros stored by lanes 1 .. 31 of warp 0 instead, so the conversion
    // starts at once, slowed the producer's thread: -4.5% at D128 S1K, bench/NOTES.md session 22.)
    if constexpr (Sm90Bwd::kDqSmem) {
      if (threadIdx.x >= 32 && p.base.zero_lag > 0) sm90::bwd::zero::run(p.base, sm, work.steps > 0);
    }
    // The converter is built only where the planner converts (plan/backward.rs sm90_bwd_convert:
    // head dims 64 and 128, no causal mask, no softcap, not the ping-pong knob's kernels):
    // elsewhere its code made ptxas spill (NVRTC 13.0.88), and causal rows measured slower with
    // it. (Two converters through shared memory, at the CTA's end or from a ring of bulk-copied
    // staging buffers, lost 8-14% and 0-1.5%: bench/NOTES.md session 24.)
    if constexpr (Sm90Bwd::kConvert) {
      if (threadIdx.x >= 32 && p.base.convert_lag > 0) sm90::bwd::convert::run(p.base, sm);
    }
    return;
  }
  ptx::setmaxnreg_inc<Sm90Bwd::kConsumerRegs>();
  // The warpgroup index through a shuffle, which ptxas knows is warp-uniform: the wgmma
  // descriptors built from it (K and V rows, dQ's K columns) then stay in uniform registers instead
  // of a move per wgmma (+0.5-2% at d 96 and on the d128 80-row tile, bench/NOTES.md session 25
  // item 3). Not at d 64, whose 128-row kernels then spilled (NVRTC 13.0.88), nor on d128's 64-row
  // tile (the causal one), which lost 0.6-1.4% with it.
  constexpr bool kUniformWg = Sm90Bwd::kHeadDim == 96 || Sm90Bwd::kBlockM == 80;
  const int w = kUniformWg ? __shfl_sync(0xffffffffu, warpgroup - 1, 0) : warpgroup - 1;
  sm90::bwd::consumer::run(p, sm, work, w, threadIdx.x - 128 * warpgroup);
}
