"""Model of the Hopper backward's in-kernel dQ conversion bookkeeping (kernels/bwd/config.cuh
BwdTraits::last_n_block / n_blocks_visiting, kernels/sm90/bwd_convert.cuh): for random masks and
shapes, the closed-form count of key blocks whose walk visits query block m must equal the brute
count over m_begin / m_end, every unit (head, query block) must have exactly one owning CTA, and
owners are key blocks that visit it (or any key block when none does).
    python3 scripts/model/bwd_convert_owner.py
"""
import random


def m_begin(n0, M, co, bm, causal):
    return min(M, max(0, n0 - co) // bm) if causal else 0


def m_end(n0, M, wol, bm, bn, local):
    if not local:
        return M
    last_query = n0 + bn - 1 - wol
    return 0 if last_query < 0 else min(M, last_query // bm + 1)


def first_n_block(m, wol, bm, bn, local):
    if not local:
        return 0
    x = m * bm + wol - bn + 1
    return 0 if x <= 0 else (x + bn - 1) // bn


def last_n_block(m, N, co, bm, bn, causal):
    # As the kernel: C division on a non-negative numerator only.
    if not causal:
        return N - 1
    x = co + (m + 1) * bm - 1
    return -1 if x < 0 else min(N - 1, x // bn)


def visiting(m, N, co, wol, bm, bn, causal, local):
    return max(0, last_n_block(m, N, co, bm, bn, causal) - first_n_block(m, wol, bm, bn, local) + 1)


def owner(u, m, N, co, wol, bm, bn, causal, local):
    c = visiting(m, N, co, wol, bm, bn, causal, local)
    return first_n_block(m, wol, bm, bn, local) + u % c if c > 0 else u % N


rng = random.Random(0)
cases = 0
for _ in range(20000):
    bm = rng.choice([64, 80, 128])
    bn = 128
    sq, sk = rng.randint(1, 3000), rng.randint(1, 3000)
    M, N = -(-sq // bm), -(-sk // bn)
    causal = rng.random() < 0.7
    local = rng.random() < 0.3
    co = rng.choice([0, sk - sq, rng.randint(-3000, 3000)])
    wol = rng.randint(-3000, 0) if local else 0
    for m in range(M):
        brute = [n for n in range(N) if m_begin(n * bn, M, co, bm, causal) <= m < m_end(n * bn, M, wol, bm, bn, local)]
        c = visiting(m, N, co, wol, bm, bn, causal, local)
        assert c == len(brute), (bm, sq, sk, co, wol, causal, local, m, c, brute)
        if brute:
            assert brute == list(range(brute[0], brute[-1] + 1))
        hpc = rng.randint(1, 3)
        for hi in range(hpc):
            u = hi * M + m
            o = owner(u, m, N, co, wol, bm, bn, causal, local)
            assert 0 <= o < N and (not brute or o in brute)
        cases += 1
print(f"ok: {cases} query blocks, counts match the walk and every unit has one owner that visits it")
