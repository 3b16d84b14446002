"""Model of the Hopper backward's in-kernel zeroing of the fp32 dQ accumulator
(kernels/sm90/bwd_zero.cuh, plan/backward.rs sm90_bwd_zero_lag, kernels/common/sections.cuh):
for random shapes,
  - the N CTAs of grid row r, each storing 16-byte units n * 96 + t, stepping by N * 96, cover
    row r + lag's units exactly once;
  - prep's rows (bh < lag * heads per row) and the kernel's rows (r >= lag) cover every row once;
  - every CTA of row r - lag is launched before any CTA of row r, in launch order with or without
    causal sections (Work::sectioned), with the host's lag (a wave of rows + 1, raised to a
    section's rows), so the producer's wait for its row's zeros cannot wait on a later launch.
    python3 scripts/model/bwd_zero_cover.py
"""
import random

THREADS = 96  # warps 1 .. 3 of the producer warpgroup


def section_rows(causal, d, det, n_blocks, mib, group, sq, bm, rows):
    # Work::sectioned and the host's mirror in sm90_bwd_zero_lag.
    if not (causal and d >= 96 and not det and n_blocks >= 16 and mib > 0):
        return None
    row_bytes = 8 * group * (-(-sq // bm)) * bm * d
    return min(rows, max(1, (mib << 20) // row_bytes))


def host_lag(rows, n_blocks, sm_count, sec, forced=None):
    lag = forced if forced is not None else -(-sm_count // max(1, n_blocks)) + 1
    if sec is not None:
        lag = max(lag, sec)
    return 0 if lag >= rows else lag


def launch_row_positions(nx, rows, sec):
    """Launch index -> (row, key block): x fastest, then row; or kernels/common/sections.cuh."""
    out = []
    for u in range(nx * rows):
        if sec is None:
            out.append((u // nx, u % nx))
            continue
        base = u // (sec * nx) * sec
        n = min(sec, rows - base)
        r = u - base * nx
        pos = r // n
        out.append((base + (r - pos * n), pos))
    return out


def check(rng):
    d = rng.choice([64, 96, 128])
    bm = rng.choice([64, 80, 128]) if d != 64 else rng.choice([64, 128])
    causal = rng.random() < 0.5
    det = rng.random() < 0.2
    b, hkv = rng.randint(1, 6), rng.randint(1, 4)
    group = rng.choice([1, 1, 2, 4])
    splits = rng.choice([s for s in (1, 2, 4) if group % s == 0])
    sq = rng.randint(1, 5000)
    sk = rng.randint(1, 5000)
    n_blocks = -(-sk // 128)
    rows = b * hkv * splits
    per_row_heads = group // splits
    sec = section_rows(causal, d, det, n_blocks, 16, per_row_heads, sq, bm, rows)
    sm_count = rng.choice([132, 16, 4])
    forced = rng.choice([None, None, 1, 2])
    lag = host_lag(rows, n_blocks, sm_count, sec, forced)
    units = per_row_heads * (-(-sq // bm)) * bm * d // 4
    # Coverage of one kernel-zeroed row by its zeroing row's CTAs.
    hits = [0] * units
    for n in range(n_blocks):
        for t in range(THREADS):
            u = n * THREADS + t
            while u < units:
                hits[u] += 1
                u += n_blocks * THREADS
    assert all(h == 1 for h in hits), (d, bm, sq, n_blocks, units)
    # Prep's rows and the kernel's rows partition the rows.
    heads = hkv * group
    for bh in range(b * heads):
        row = bh // per_row_heads
        by_prep = lag == 0 or bh < lag * per_row_heads
        by_kernel = lag > 0 and row >= lag
        assert by_prep != by_kernel, (bh, row, lag)
    # Launch order: the zeroing row's CTAs all precede the waiting row's.
    if lag > 0:
        order = launch_row_positions(n_blocks, rows, sec)
        first, last = {}, {}
        for i, (r, _) in enumerate(order):
            first.setdefault(r, i)
            last[r] = i
        for r in range(lag, rows):
            assert last[r - lag] < first[r], (r, lag, sec, n_blocks, rows)
    return lag > 0, sec is not None


def main():
    rng = random.Random(22)
    zeroed = sectioned = 0
    for _ in range(3000):
        z, s = check(rng)
        zeroed += z
        sectioned += z and s
    print(f"3000 shapes: {zeroed} zero in the kernel ({sectioned} of them with causal sections); all checks passed")


if __name__ == "__main__":
    main()
