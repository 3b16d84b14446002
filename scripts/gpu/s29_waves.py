"""Session 29: is the Hopper backward's non-causal time quantized in waves of CTAs?

The backward runs one CTA per (128-key block, head, batch), one CTA per SM, every CTA of a
non-causal row the same length; the suite's rows (B x S = 16K tokens) launch 2048 CTAs (H16) or
4096 (H32), 15.52 and 31.03 waves of 132 SMs. If CTAs run in lockstep waves, a row takes
ceil(waves) CTA-times and its TF/s goes as CTAs / ceil(waves). Each triple below changes B or H so
the CTA count lands just over a wave, at the suite's fraction, and on a whole number of waves.
The forward's d128 tiles (128 x 128, a persistent grid of 132 CTAs) make the same 15.52 rounds
at D128 S8K B1 H32, so three forward rows ask the same of it. flashcore alone, the bench's own
method (python -m flashcore bench: events, 1 GiB flush, median).

    python3 scripts/gpu/s29_waves.py OUT.json [ROUNDS]
"""

import json
import sys

from flashcore import _bench

# (name, b, h, s, d): CTAs (forward: tiles) = b * h * s / 128.
FWD_SHAPES = [
    ("fwd-d128-s8k-b1h31", 1, 31, 8192, 128),  # 1984 tiles, 15.03 rounds
    ("fwd-d128-s8k-b1h32", 1, 32, 8192, 128),  # 2048, 15.52
    ("fwd-d128-s8k-b1h33", 1, 33, 8192, 128),  # 2112, 16.00
]
SHAPES = [
    ("d64-s1k-b16h31", 16, 31, 1024, 64),    # 3968 CTAs, 30.06 waves
    ("d64-s1k-b16h32", 16, 32, 1024, 64),    # 4096, 31.03 (the suite's row)
    ("d64-s1k-b16h33", 16, 33, 1024, 64),    # 4224, 32.00
    ("d128-s1k-b31h8", 31, 8, 1024, 128),    # 1984, 15.03
    ("d128-s1k-b16h16", 16, 16, 1024, 128),  # 2048, 15.52 (the suite's row)
    ("d128-s1k-b33h8", 33, 8, 1024, 128),    # 2112, 16.00
    ("d128-s4k-b1h62", 1, 62, 4096, 128),    # 1984, 15.03
    ("d128-s4k-b1h64", 1, 64, 4096, 128),    # 2048, 15.52
    ("d128-s4k-b1h66", 1, 66, 4096, 128),    # 2112, 16.00
]


def rows():
    return [
        dict(name=n, suites=["waves"], mode=mode, b=b, h=h, hkv=h, sq=s, sk=s, d=d, dtype="bf16", mask="none",
             layout="bshd")
        for mode, shapes in (("fwd", FWD_SHAPES), ("bwd", SHAPES))
        for n, b, h, s, d in shapes
    ]


def main(out, rounds):
    _bench.load_shapes = lambda suites, path=None: rows()
    records = []
    for i in range(rounds):
        for rec in _bench.run(["waves"], ["flashcore"], iters=30):
            rec["round"] = i
            records.append(rec)
        json.dump(records, open(out, "w"), indent=1)
    for rec in records:
        ctas = rec["B"] * rec["H"] * rec["Sk"] // 128
        print(f"{rec['name']:<18} round {rec['round']} CTAs {ctas:5d} waves {ctas / 132:6.2f} "
              f"{rec['tflops']:7.1f} TF/s  per-wave model {ctas / -(-ctas // 132) / 132:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
