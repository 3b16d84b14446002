// FP8 forward (Sm90::kVtSmem): V transposed in shared memory by the producer warpgroup's warps 1-3.
// FP8 wgmma reads its B operand K-major only, and P·V reduces over keys, so each stage needs V as
// [d][key]. The producer loads V like K into a staging slot ([d block][key][128 B], the 128-byte
// swizzle: 16-byte chunk c of row r at c ^ (r % 8)); these warps rewrite it into the stage's V tile
// ([128-key box][d][128 B], the same swizzle), in the key order fp8_vt.cu writes and the consumers
// read (their probabilities fill the A fragments in that order, sm90/consumer.cuh pack_p).
//
// One step of a warp moves 32 keys x 16 head-dim values (512 bytes):
//   ldmatrix.x4.trans: matrix i is 8 keys x 16 bytes (one d chunk) at rows the lanes choose, and
//     lane l receives keys 2(l%4), 2(l%4)+1 of it at the d pair 2(l/4), 2(l/4)+1: a 2x2 byte block;
//   two byte permutes per pair of matrices: the same d of four keys, the four keys that fill one
//     4-byte group of the permuted order (keys base, base+1, base+8, base+9);
//   stmatrix.x4: register i of lane l goes to row l/4 of matrix i at bytes 4(l%4): 16-byte rows
//     of one d, 16 consecutive key positions.
// Both sides take 16 bytes a lane per instruction (the first in-kernel transposer, with 4-byte
// accesses, could not keep up with the consumers: bench/NOTES.md, session 7, item 10).
#pragma once
#include "../common/ptx/ldmatrix.cuh"
#include "../common/ptx/tma.cuh"
#include "config.cuh"
#include "smem.cuh"

namespace sm90::transpose {

// Position 4m + e of a 32-key group holds key base(m) + {0, 1, 8, 9}[e], base(m) = 16 (m / 4) +
// 2 (m % 4): fp8_vt.cu's vt_key_of.
FC_DEVICE int group_base(int m) { return ((m & 4) << 2) | ((m & 3) << 1); }

// Transposes every V block this CTA streams, in the order the producer fills the staging slots,
// until the producer completes a slot's phase with the stop word set instead of data. `w` is this
// warp's index among the transposer warps. The loop over a chunk's 32-key groups stays a loop:
// unrolled, it changed how ptxas allocated the consumers' registers (their main loops took uniform
// values into vector registers and two tile counters spilled; bench/NOTES.md, session 20).
FC_DEVICE void run(const Sm90Smem& sm, int w, int lane) {
  constexpr int kGroups = Sm90::kBlockN / 32;  // 32-key groups per block
  constexpr int kChunks = Sm90::kHeadDim / 16;  // 16-byte d chunks
  const int mi = lane >> 3, r = lane & 7;
  // ldmatrix: lane 8 mi + r addresses row r of matrix mi. Matrices 0 and 1 cover the groups m = 0..3,
  // 2 and 3 the groups 4..7; the odd ones the keys + 8; row r is key + (r & 1) of group r / 2. Keys
  // 32g apart share their swizzle (32g % 8 = 0): a chunk's groups are 4 KiB apart in the staging slot.
  const int load_key = group_base((r >> 1) + 4 * (mi >> 1)) + 8 * (mi & 1) + (r & 1);
  // stmatrix: lane 8 mi + r addresses row r of matrix mi, head-dim value 2r + (mi & 1) of the
  // chunk (so d % 8 is the lane's own), key positions 16 (mi >> 1) .. + 15 of the group.
  const int store_d = 2 * r + (mi & 1);
#if defined(FC_SM90_PROBE) && (FC_SM90_PROBE & 32)
  // Timing probe: warp 0 of the three transposes every chunk, the others only wait and arrive.
  constexpr int kWarps = 1;
  if (w > 0) w = kChunks;
#else
  constexpr int kWarps = Sm90::kTransposeWarps;
#endif
  for (int it = 0;; ++it) {
    const int i = it % Sm90::kVsSlots, s = it % Sm90::kStages;
    ptx::mbar_wait(sm.vs_full(i), (it / Sm90::kVsSlots) & 1);
    // The producer completes a staging slot's phase without data once no block is left. Lane 0
    // reads the word and the warp takes it from lane 0: lane 0's own arrivals then order every
    // read of it before the producer's write (compute-sanitizer's racecheck does not count
    // __syncwarp as ordering the other lanes' reads before lane 0's arrival).
    u32 stop = lane == 0 ? ptx::ld_shared_u32(sm.vs_stop()) : 0u;
    if (__shfl_sync(0xffffffffu, stop, 0) != 0) break;
    // Stage s's V was last read by block it - kStages's P·V.
    if (it >= Sm90::kStages) ptx::mbar_wait(sm.v_empty(s), ((it / Sm90::kStages) - 1) & 1);
    const u32 src = sm.vs_slot(i), dst = sm.v(s);
#if defined(FC_SM90_PROBE) && (FC_SM90_PROBE & 16)
    // Timing probe: the waits and arrivals without the data movement (V is left as it was).
    if (true) {
    } else
#endif
    // Warp w takes the chunks w, w + 3, ...
    for (int c = w; c < kChunks; c += kWarps) {
      const u32 load = src + ((u32)c / 8) * Sm90::kBlockN * 128 + ptx::swizzle128(load_key, (u32)c % 8);
      const int d = 16 * c + store_d;
      const u32 store = dst + d * 128;
#pragma unroll 1
      for (int g = 0; g < kGroups; ++g) {
        u32 x[4];
        ptx::warp::ldmatrix_x4_trans(x, load + g * 32 * 128);
        const u32 d0a = __byte_perm(x[0], x[1], 0x6420), d1a = __byte_perm(x[0], x[1], 0x7531);
        const u32 d0b = __byte_perm(x[2], x[3], 0x6420), d1b = __byte_perm(x[2], x[3], 0x7531);
        const u32 chunk = (u32)((2 * (g % 4) + (mi >> 1)) ^ (store_d & 7));
        ptx::warp::stmatrix_x4(store + (g / 4) * Sm90::kHeadDim * 128 + (chunk << 4), d0a, d1a, d0b, d1b);
      }
    }
    // The stores are generic-proxy writes that wgmma (the async proxy) reads after v_full.
    ptx::fence_proxy_async_smem();
    __syncwarp();
    if (lane == 0) {
      ptx::mbar_arrive(sm.v_full(s));
      ptx::mbar_arrive(sm.vs_empty(i));
    }
  }
}

}  // namespace sm90::transpose
