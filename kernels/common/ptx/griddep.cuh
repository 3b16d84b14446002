// Programmatic dependent launch (PTX ISA griddepcontrol, sm_90+): a kernel launched with the
// programmatic-stream-serialization attribute (launch/mod.rs `launch_dependent`) may start while
// the previous kernel in its stream is still running, once every CTA of that kernel has called
// launch_dependents() (or exited). So its CTAs are resident and waiting when the previous kernel
// ends, instead of the stream's launch gap starting only then. Below sm_90, and for a kernel
// launched the ordinary way, both are no-ops.
#pragma once
#include "../types.cuh"

namespace ptx {

// Blocks until every kernel this one depends on has completed and its writes are visible. A
// dependent kernel calls it before it reads (or writes) anything those kernels write (or read).
FC_DEVICE void grid_dependency_wait() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// Lets the kernels launched after this one as dependents start early (they still wait, in
// grid_dependency_wait, for this one to finish).
FC_DEVICE void launch_dependents() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" :::);
#endif
}

}  // namespace ptx
