#!/usr/bin/env python3
"""Model of the Hopper backward's last wave on non-causal rows (no GPU needed).

The backward launches one CTA per (128-key block, kv head, batch), one CTA per SM (shared memory),
and the hardware hands CTAs to SMs in launch order as SMs free up. Every non-causal CTA runs the
same `steps` query blocks plus a fixed overhead (its start and end: about two steps, bench/NOTES.md
session 27 item 2), so the suite's rows (2048 CTAs at H16, 4096 at H32: 15.52 and 31.03 waves of
132) end with a partial wave that leaves most SMs idle. A tail split runs the last T CTAs' key
blocks as k pieces each (query blocks divided among them; their dK / dV partials summed by the
last piece to finish, `fixup` steps more per piece). This prints, per row, the makespan in steps
with no split and with the best (T, k), and the predicted gain; `--jitter` adds a random spread
to every CTA's length (lockstep waves are the worst case for the tail).

    python3 scripts/model/bwd_tail_split.py [--jitter 0.03] [--seed 1]

Outcome (bench/NOTES.md session 30 items 1-2): the premise failed on the H200. Shapes at 16.00
waves ran at most 1.4% faster per FLOP than at 15.52, and the split, built and correct, lost 2-4%
where it split: the backward's CTAs do not end in lockstep, so this model's lockstep and ±5%
cases both overstate what the tail costs. Kept as the record of the prediction.
"""
import argparse
import heapq
import random

SMS = 132
OVERHEAD = 2.0  # steps per CTA (session 27's fit)
FIXUP = 1.5  # steps per piece: write the fp32 partials (128 KiB at d128), count, the last one reads them back


def makespan(lengths, sms=SMS):
    free = [0.0] * sms
    heapq.heapify(free)
    for length in lengths:
        heapq.heappush(free, heapq.heappop(free) + length)
    return max(free)


def pieces_of(steps, k):
    """Query blocks per piece when `steps` are divided among k pieces (as the kernel divides them)."""
    return [steps * (i + 1) // k - steps * i // k for i in range(k)]


def lengths(ctas, steps, tail, k, jitter, rng):
    out = []
    for c in range(ctas):
        if c < ctas - tail or k == 1:
            base = [steps + OVERHEAD]
        else:
            base = [s + OVERHEAD + FIXUP for s in pieces_of(steps, k)]
        out += [b * (1 + rng.uniform(-jitter, jitter)) if jitter else b for b in base]
    return out


def closed_form(ctas, steps, tail, k, sms=SMS):
    """The lockstep makespan without simulating: (ctas - tail) / sms full waves when the tail is the
    last partial wave plus whole waves, then ceil(tail * k / sms) rounds of the longest piece."""
    full = (ctas - tail) // sms
    if k == 1:
        return -(-ctas // sms) * (steps + OVERHEAD)
    return full * (steps + OVERHEAD) + -(-tail * k // sms) * (-(-steps // k) + OVERHEAD + FIXUP)


def lag_rows(n_blocks, sms=SMS):
    """plan/backward.rs sm90_bwd_row_lag: the in-kernel zeroing and dQ conversion reach a wave of
    grid rows and one more back / ahead; a tail inside the last lag rows leaves both as they are."""
    return -(-sms // n_blocks) + 1


def plan(ctas, steps, sms=SMS):
    """The (tail, k) the planner would choose: the split that minimises the lockstep makespan, over
    tails of the last partial wave plus 0-2 full waves and k up to the CTA's query blocks."""
    rest = ctas % sms
    best = (makespan(lengths(ctas, steps, 0, 1, 0, None), sms), 0, 1)
    if rest == 0:
        return best
    for waves in range(3):
        tail = rest + waves * sms
        if tail > ctas:
            break
        for k in range(2, min(steps, 64) + 1):
            m = makespan(lengths(ctas, steps, tail, k, 0, None), sms)
            if m < best[0] - 1e-9:
                best = (m, tail, k)
    return best


ROWS = [  # name, CTAs, query blocks per CTA (d128: 80-row steps; d64: 128-row steps), key blocks per row
    ("D128 S1K (B16 H16)", 2048, 13, 8),
    ("D128 S4K (B4 H16)", 2048, 52, 32),
    ("D128 S16K (B1 H16)", 2048, 205, 128),
    ("D64 S1K (B16 H32)", 4096, 8, 8),
    ("D64 S4K (B4 H32)", 4096, 32, 32),
    ("D64 S16K (B1 H32)", 4096, 128, 128),
    ("D96 S4K (B4 H16)", 2048, 52, 32),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jitter", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    print(f"{'row':<20} {'waves':>6} {'no split':>9} {'T':>4} {'k':>3} {'split':>9} {'gain':>6}  closed form")
    for name, ctas, steps, n_blocks in ROWS:
        _, tail, k = plan(ctas, steps)
        # The split the closed form picks (what a planner would compute): the same in every row.
        cf = min((closed_form(ctas, steps, t, kk), t, kk) for t in {ctas % SMS, ctas % SMS + SMS} for kk in range(1, min(steps, 64) + 1))
        assert tail <= lag_rows(n_blocks) * n_blocks, (name, tail)
        base = makespan(lengths(ctas, steps, 0, 1, a.jitter, rng))
        split = makespan(lengths(ctas, steps, tail, k, a.jitter, rng))
        print(f"{name:<20} {ctas / SMS:6.2f} {base:9.1f} {tail:4d} {k:3d} {split:9.1f} {base / split - 1:6.1%}"
              f"  T {cf[1]} k {cf[2]}")


if __name__ == "__main__":
    main()
