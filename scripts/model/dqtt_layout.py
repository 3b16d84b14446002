"""Index model of the Hopper backward's dim-major dQ tiles (FLASHCORE_SM90_BWD_DQ_TT, kernels/bwd/
config.cuh BwdTraits::kDqTT): the addresses sm90/bwd_consumer.cuh store_dq writes each dQᵀ value
to, and the ones bwd/post.cu reads each (query, dim) from, written out as the kernels compute them.
Checks, for the tiles that take it (80 rows at d128 and d96, 64 rows at d96), that every value of
the tile lands at its own address, that post reads back the value of the right query and dim, and
that each 8-lane phase of a 16-byte shared-memory store covers 8 distinct 16-byte bank groups.

    python3 scripts/model/dqtt_layout.py
"""


def check(block_m, head_dim):
    dq8 = block_m // 8
    swz = (lambda d: (d & 1) << 2) if block_m % 32 == 0 else (lambda d: 0)
    mem = {}
    # store_dq: warpgroup w, warp: dims 8c + g (+ 8), c = chunk0 + row / 8, chunk0 = 8w, row = 16 warp.
    for w in range(2):
        for warp in range(4):
            c = 8 * w + 2 * warp
            if head_dim % 64 and 8 * c >= head_dim:
                continue
            for lane in range(32):
                g, t = lane >> 2, lane & 3
                for h in range(2):
                    d = 8 * c + g + 8 * h
                    for a in range(dq8 // 2):
                        at = d * block_m + 4 * ((4 * a + t) ^ swz(d))
                        # acc[2a][2h], acc[2a][2h+1], acc[2a+1][2h], acc[2a+1][2h+1]: queries 8j + 2t (+1)
                        for i, q in enumerate((16 * a + 2 * t, 16 * a + 2 * t + 1, 16 * a + 8 + 2 * t, 16 * a + 9 + 2 * t)):
                            assert at + i not in mem, "two values at one address"
                            mem[at + i] = (q, d)
            # the bank check: one st.shared.v4 of this warp, four phases of 8 lanes
            for h in range(2):
                for a in range(dq8 // 2):
                    for phase in range(4):
                        groups = set()
                        for lane in range(8 * phase, 8 * phase + 8):
                            g, t = lane >> 2, lane & 3
                            d = 8 * c + g + 8 * h
                            groups.add(((d * block_m + 4 * ((4 * a + t) ^ swz(d))) * 4 // 16) % 8)
                        assert len(groups) == 8, f"bank conflict at block_m {block_m}, d {head_dim}"
    assert len(mem) == block_m * head_dim, "the tile is not covered"
    # post: thread of chunk k (4 queries) and 8-dim chunk `chunk`.
    for k in range(block_m // 4):
        q0 = 16 * (k // 4) + 2 * (k % 4)
        for chunk in range(head_dim // 8):
            for i in range(8):
                d = 8 * chunk + i
                for j in range(4):
                    assert mem[d * block_m + 4 * (k ^ swz(d)) + j] == (q0 + (j & 1) + 8 * (j >> 1), d)
    # a chunk never holds queries before its own index (so a grid of seqlen_q threads covers them)
    for k in range(block_m // 4):
        assert 16 * (k // 4) + 2 * (k % 4) >= k
    print(f"block_m {block_m}, head dim {head_dim}: {len(mem)} values, layout and banks ok")


for bm, hd in ((80, 128), (80, 96), (64, 96)):
    check(bm, hd)
