#!/usr/bin/env python3
"""Model of the Hopper forward's dynamic tile scheduler on causal rows (no GPU needed).

132 CTAs take tiles from a counter in ticket order; a tile of query block m costs m + 1 key blocks
plus a fixed per-tile overhead (in block units). Prints the makespan over the ideal (total work /
CTAs) for head-by-head order (sections of 1 head, the order before session 11) and for longest
first across sections of n heads (kernels/sm90/scheduler.cuh Scheduler::section).
    python3 scripts/model/causal_tail.py
"""
import heapq

CTAS = 132
OVERHEAD = 0.8  # per-tile cost in key blocks (epilogue, first block's exposed softmax)


def makespan(order, ctas=CTAS, overhead=OVERHEAD):
    free = [(0.0, i) for i in range(ctas)]
    for length in order:
        t, i = heapq.heappop(free)
        heapq.heappush(free, (t + length + overhead, i))
    return max(t for t, _ in free)


def tail(m_blocks, heads, section):
    tiles = [(h, m) for h in range(heads) for m in range(m_blocks)]
    order = sorted(tiles, key=lambda x: (x[0] // section, -x[1], x[0]))
    ideal = sum(m + 1 + OVERHEAD for _, m in tiles) / CTAS
    return makespan([m + 1 for _, m in order]) / ideal


ROWS = [  # name, query blocks per head, (batch x heads)
    ("d64 S512 (128-row tiles)", 4, 1024),
    ("d64 S1K (128-row tiles)", 8, 512),
    ("d64 S2K (192-row tiles)", 11, 256),
    ("d64 S4K (192-row tiles)", 22, 128),
    ("d128 S1K", 8, 256),
    ("d128 S2K", 16, 128),
    ("d128 S4K", 32, 64),
    ("d128 S8K", 64, 32),
    ("GQA 32/8 B2 S8K", 64, 64),
    ("d256 S4K (128-row tiles; pairs not modelled)", 32, 32),
]

if __name__ == "__main__":
    sections = (1, 2, 4, 8, 16, 32, 64, 128)
    print("makespan / ideal by section size (heads):", sections)
    for name, m, bh in ROWS:
        print(f"{name:46s}", " ".join(f"{tail(m, bh, s):.3f}" for s in sections))
