#!/usr/bin/env python3
"""Model of splitting the Hopper forward's last round of tiles along the keys (no GPU needed).

The persistent forward hands equal tiles (no mask, no window) to 132 CTAs from a counter, and on
the H200 those run in lockstep rounds (bench/NOTES.md session 30 item 6: 128 CTAs were as fast as
132 on 2048 tiles). So a row of T tiles takes ceil(T / 132) rounds of n key blocks. Splitting the
last partial round's tiles into k pieces of n / k blocks each, with `cost` key blocks of extra
work per piece (its Q load and prologue, an fp32 partial of O written and read back by the piece
that combines), makes the tail ceil(tail * k / 132) rounds of (n / k + cost) blocks instead of n.
Prints, per row, the best k and the predicted gain.

    python3 scripts/model/fwd_tail_split.py [--cost 3] [--sms 132]
"""
import argparse
import math

# The suite's non-causal D128 rows (B x S = 16K tokens, H16): 128 x 128 tiles.
ROWS = [("D128 S2K", 2048, 16), ("D128 S4K", 2048, 32), ("D128 S8K", 2048, 64), ("D128 S16K", 2048, 128)]


def makespan(tiles: int, n: int, sms: int, k: int, cost: float) -> float:
    full, tail = divmod(tiles, sms)
    if tail == 0 or k == 1:
        return math.ceil(tiles / sms) * n
    return full * n + math.ceil(tail * k / sms) * (n / k + cost)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cost", type=float, default=3.0, help="extra key blocks of work per piece")
    ap.add_argument("--sms", type=int, default=132)
    a = ap.parse_args()
    print(f"{'row':<11} {'rounds':>7} {'no split':>9} {'best k':>7} {'split':>8} {'gain':>6}")
    for name, tiles, n in ROWS:
        base = makespan(tiles, n, a.sms, 1, a.cost)
        k, t = min(((k, makespan(tiles, n, a.sms, k, a.cost)) for k in range(1, 17)), key=lambda kt: kt[1])
        print(f"{name:<11} {tiles / a.sms:7.2f} {base:9.1f} {k:7d} {t:8.1f} {100 * (base / t - 1):5.1f}%")


if __name__ == "__main__":
    main()
