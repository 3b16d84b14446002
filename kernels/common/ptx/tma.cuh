// Bulk tensor copies (TMA, PTX ISA 9.7.9.25.5, sm_90) and mbarriers (9.7.13.15, sm_80/sm_90).
#pragma once
#include "../types.cuh"

// The driver's CUtensorMap: 128 opaque bytes, 64-byte aligned, built on the host by
// cuTensorMapEncodeTiled (launch/tma.rs) and passed inside the __grid_constant__ params.
struct __align__(64) TmaDesc {
  u64 opaque[16];
};

namespace ptx {

// Loads the box at coordinates (c0 innermost .. c3) of a 4-d tensor map into shared memory and
// signals `bar` with the byte count when it lands. Out-of-range elements are written as zeros.
FC_DEVICE void tma_load_4d(u32 smem_dst, const TmaDesc* map, int c0, int c1, int c2, int c3, u32 bar) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(
          smem_dst),
      "l"(reinterpret_cast<u64>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
      : "memory");
}

// The same box written to shared memory at the same offset in every CTA of the cluster named in
// `cta_mask` (bit r: rank r), each CTA's `bar` (same offset) signalled with the bytes it received.
FC_DEVICE void tma_load_4d_multicast(u32 smem_dst, const TmaDesc* map, int c0, int c1, int c2, int c3, u32 bar,
                                     u16 cta_mask) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1, {%2, "
      "%3, %4, %5}], [%6], %7;\n" ::"r"(smem_dst),
      "l"(reinterpret_cast<u64>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar), "h"(cta_mask)
      : "memory");
}

// Plain bulk copy (no tensor map, PTX ISA 9.7.9.25.4.1 cp.async.bulk, sm_90): `bytes` contiguous
// bytes from global memory to shared memory, signalling `bar` with the byte count when they land.
// Both addresses 16-byte aligned, bytes a multiple of 16.
FC_DEVICE void bulk_load(u32 smem_dst, const void* src, u32 bytes, u32 bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(smem_dst),
               "l"(reinterpret_cast<u64>(src)), "r"(bytes), "r"(bar)
               : "memory");
}

FC_DEVICE void prefetch_tma_desc(const TmaDesc* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<u64>(map)) : "memory");
}

FC_DEVICE void mbar_init(u32 bar, u32 count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

// Makes barrier initialisation visible to the async proxy (the TMA unit) before first use.
FC_DEVICE void fence_barrier_init() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }

// Arrives once and adds `bytes` to the transaction count the phase waits for.
FC_DEVICE void mbar_arrive_expect_tx(u32 bar, u32 bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

// Adds `bytes` to the transaction count the current phase waits for, without arriving (the
// arrival comes later, from mbar_arrive).
FC_DEVICE void mbar_expect_tx(u32 bar, u32 bytes) {
  asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

FC_DEVICE void mbar_arrive(u32 bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// The address of the same shared-memory offset in cluster CTA `rank` (PTX mapa).
FC_DEVICE u32 cluster_addr(u32 addr, u32 rank) {
  u32 r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(r) : "r"(addr), "r"(rank));
  return r;
}

// Arrives once on the mbarrier at the same shared-memory offset in cluster CTA `rank` (a peer's
// stage released by this CTA's consumers). The default semantics (release at CTA scope), as
// CUTLASS's cluster barriers: what the arrival orders is this CTA's completed wgmma reads of the
// stage against the peer's TMA refill, both async-proxy accesses; `.release.cluster` would put a
// MEMBAR.ALL.GPU before every arrival (seen in the SASS).
FC_DEVICE void mbar_arrive_cluster(u32 bar, u32 rank) {
  asm volatile("mbarrier.arrive.shared::cluster.b64 _, [%0];\n" ::"r"(cluster_addr(bar, rank)) : "memory");
}

// The same with release at cluster scope: orders this thread's earlier generic-proxy accesses to
// the peer's shared memory (a read of a value it handed over) before the arrival.
FC_DEVICE void mbar_arrive_cluster_release(u32 bar, u32 rank) {
  asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];\n" ::"r"(cluster_addr(bar, rank))
               : "memory");
}

// Stores `v` at the same shared-memory offset in cluster CTA `rank`, then arrives on that CTA's
// mbarrier `bar` (same offset) with release at cluster scope, so a peer that waits on the barrier
// with acquire at cluster scope (mbar_wait_cluster) reads the value. Costs a full memory barrier
// (MEMBAR.ALL.GPU): once per tile, on the producer thread.
FC_DEVICE void st_and_arrive_cluster(u32 addr, u32 v, u32 bar, u32 rank) {
  asm volatile("st.shared::cluster.u32 [%0], %1;\n" ::"r"(cluster_addr(addr, rank)), "r"(v) : "memory");
  mbar_arrive_cluster_release(bar, rank);
}

// The spin loop of mbar_wait / mbar_wait_cluster; `sem` is try_wait's semantics ("": acquire at
// CTA scope). The braces scope the label, so every inlined copy may use the same one.
#define FC_MBAR_WAIT_LOOP(sem)                                         \
  "{\n.reg .pred done;\n"                                              \
  "FC_MBAR_WAIT:\n"                                                    \
  "mbarrier.try_wait.parity" sem ".shared::cta.b64 done, [%0], %1;\n" \
  "@!done bra FC_MBAR_WAIT;\n}\n"

// Like mbar_wait, acquiring at cluster scope: for a barrier a peer CTA arrives on to publish data
// it wrote into this CTA's shared memory (st_and_arrive_cluster).
FC_DEVICE void mbar_wait_cluster(u32 bar, u32 parity) {
  asm volatile(FC_MBAR_WAIT_LOOP(".acquire.cluster")::"r"(bar), "r"(parity) : "memory");
}

FC_DEVICE u32 ld_shared_u32(u32 addr) {
  u32 v;
  asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(v) : "r"(addr) : "memory");
  return v;
}

// Spins until the phase with the given parity has completed.
FC_DEVICE void mbar_wait(u32 bar, u32 parity) { asm volatile(FC_MBAR_WAIT_LOOP("")::"r"(bar), "r"(parity) : "memory"); }

// Thread block clusters (PTX ISA 9.7.13.3 barrier.cluster; special registers 10.x): this CTA's
// rank in its cluster, the cluster's index in the grid and the number of clusters (x only).
FC_DEVICE u32 cluster_ctarank() {
  u32 r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
FC_DEVICE u32 cluster_id_x() {
  u32 r;
  asm volatile("mov.u32 %0, %%clusterid.x;\n" : "=r"(r));
  return r;
}
FC_DEVICE u32 num_clusters_x() {
  u32 r;
  asm volatile("mov.u32 %0, %%nclusterid.x;\n" : "=r"(r));
  return r;
}
// Every non-exited thread of the cluster meets here; writes before it (shared::cluster included)
// are visible after it.
FC_DEVICE void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release;\nbarrier.cluster.wait.acquire;\n" ::: "memory");
}

// Register budget moves between warpgroups of one CTA (9.7.19.5, sm_90a). Every thread of the
// warpgroup executes it; the kernel must have a register cap at entry (__launch_bounds__(n, 1)).
template <int Regs>
FC_DEVICE void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Regs));
}
template <int Regs>
FC_DEVICE void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Regs));
}

}  // namespace ptx

namespace ptx {

// Named barriers (PTX ISA 9.7.13.4, bar.sync / bar.arrive): `count` threads, a multiple of 32, meet
// at barrier `id` (0 is __syncthreads). sync waits; arrive only counts.
FC_DEVICE void named_bar_sync(int id, int count) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}
FC_DEVICE void named_bar_arrive(int id, int count) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}

}  // namespace ptx

namespace ptx {

// Byte offset of 16-byte chunk `chunk` (0 .. 7) of row `row` in a 1024-byte aligned tile of 128-byte
// rows with the TMA / wgmma 128-byte swizzle: chunk c of row r lives at c ^ (r % 8), which also
// spreads the 8 rows of one 4-byte-per-lane store instruction over different bank groups.
FC_DEVICE u32 swizzle128(int row, int chunk) { return (u32)(row * 128 + ((chunk ^ (row & 7)) << 4)); }

FC_DEVICE void st_shared_u32(u32 addr, u32 v) { asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory"); }
FC_DEVICE u64 ld_shared_u64(u32 addr) {
  u64 v;
  asm volatile("ld.shared.u64 %0, [%1];\n" : "=l"(v) : "r"(addr) : "memory");
  return v;
}
FC_DEVICE void st_shared_u64(u32 addr, u64 v) { asm volatile("st.shared.u64 [%0], %1;\n" ::"r"(addr), "l"(v) : "memory"); }

// Orders this thread's generic-proxy shared-memory writes before later async-proxy reads (a TMA
// store of the same bytes). Each writing thread fences, then the threads meet at a barrier.
FC_DEVICE void fence_proxy_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// The same between the generic proxy and the async proxy's accesses to global memory (a bulk
// reduce ordered after an acquire, or before a release, of the generic proxy).
FC_DEVICE void fence_proxy_async_global() { asm volatile("fence.proxy.async.global;\n" ::: "memory"); }

// Stores a box from shared memory to the 4-d tensor map at (c0 .. c3); rows past the end of the
// tensor are not written. Completion is tracked per thread with bulk async-groups.
FC_DEVICE void tma_store_4d(const TmaDesc* map, u32 smem_src, int c0, int c1, int c2, int c3) {
  asm volatile("cp.async.bulk.tensor.4d.global.shared::cta.bulk_group [%0, {%2, %3, %4, %5}], [%1];\n" ::"l"(
                   reinterpret_cast<u64>(map)),
               "r"(smem_src), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
               : "memory");
}
FC_DEVICE void tma_store_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// Waits until at most N committed store groups may still read shared memory.
template <int N>
FC_DEVICE void tma_store_wait_read() {
  asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
}
// Waits until at most N committed store groups are incomplete (global writes done).
template <int N>
FC_DEVICE void tma_store_wait() {
  asm volatile("cp.async.bulk.wait_group %0;\n" ::"n"(N) : "memory");
}

}  // namespace ptx

namespace ptx {

FC_DEVICE void st_shared_f32x2(u32 addr, float a, float b) {
  asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(addr), "f"(a), "f"(b) : "memory");
}
FC_DEVICE void st_shared_f32x4(u32 addr, float a, float b, float c, float d) {
  asm volatile("st.shared.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "f"(a), "f"(b), "f"(c), "f"(d) : "memory");
}

// Bulk reduce-add (PTX ISA 9.7.9.25.4.2 cp.reduce.async.bulk, sm_90): dst[i] += src[i] for `bytes`
// / 4 floats, from shared memory to global memory, done by the copy engine at L2 (relaxed, like
// red.global.add). Both addresses 16-byte aligned, bytes a multiple of 16. Completion is tracked
// per thread with bulk async-groups: tma_store_commit, then tma_store_wait_read<N> before the
// source is overwritten. The writers of `src` fence (fence_proxy_async_smem) and meet the issuing
// thread at a barrier first.
FC_DEVICE void bulk_reduce_add_f32(float* dst, u32 smem_src, u32 bytes) {
  asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n" ::"l"(
                   reinterpret_cast<u64>(dst)),
               "r"(smem_src), "r"(bytes)
               : "memory");
}

}  // namespace ptx
