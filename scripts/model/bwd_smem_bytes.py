"""Shared-memory bytes per step of the Hopper backward (kernels/sm90/bwd_consumer.cuh), per tile.

Session 31 (bench/NOTES.md) found that the step is held back by the bytes stored into shared
memory (the fp32 dQ tile, and at d64 dSᵀ as well), not by synchronisation. The evidence is
FLASHCORE_SM90_BWD_PROBE: without the dQ stores the step ran 12-24% faster, and Nsight Compute
showed the GEMMs slowing while the stores ran beside them.

This model counts, for a tile of M query rows x N keys at head dim D with W = N / 64 consumer
warpgroups, the bytes written into shared memory per step:
  - Q and dO by TMA;
  - dSᵀ by stmatrix;
  - the fp32 dQ tile;
and the bytes the wgmma operands and the bulk reduce read. Each is also given per query-key pair
(the FLOPs per pair are 10 D for every tile), and the consumer registers are estimated per thread:
  - dK and dV: 2 x 64 x D / 128;
  - Sᵀ and dPᵀ: 2 x 64 x M / 128;
  - the dQ slice.
The 64 x 192 d64 tile (three consumer warpgroups) was the first candidate for fewer stored bytes
per pair. It writes 22% fewer bytes per pair but reads a third more, so it is not clearly better (session 31's
"Next"). Nothing here is measured; the shares are what the probes suggest matters.

    python3 scripts/model/bwd_smem_bytes.py
"""

from dataclasses import dataclass


@dataclass
class Tile:
    name: str
    m: int  # query rows per step
    n: int  # keys per CTA
    d: int  # head dim
    regs: int  # setmaxnreg budget per consumer thread
    dq_split: str  # how dQ (M x D) is shared by the warpgroups: by query "rows" or head-dim "cols"

    @property
    def w(self):
        return self.n // 64

    def writes(self):
        qdo = 2 * self.m * self.d * 2
        ds = self.m * self.n * 2
        dq = self.m * self.d * 4
        return {"Q+dO (TMA)": qdo, "dS": ds, "dQ fp32": dq}

    def reads(self):
        w, m, n, d = self.w, self.m, self.n, self.d
        kv_w = 64 * d * 2  # a warpgroup's K (or V) rows
        sdp = 2 * w * (kv_w + m * d * 2)  # Sᵀ = K_w Qᵀ and dPᵀ = V_w dOᵀ, both SS
        dkv = 2 * w * m * d * 2  # dV += Pᵀ dO, dK += dSᵀ Q: RS, B from shared memory
        # dQ (M x D) = dS (M x N) K (N x D) over the warpgroups, each reading all N keys of its
        # share: split by query rows, dS is read once and K by every warpgroup; split by head-dim
        # columns, the other way. (dQᵀ per warpgroup, kDqT, is split by head dims at d128.)
        dq = m * n * 2 + w * n * d * 2 if self.dq_split == "rows" else w * m * n * 2 + n * d * 2
        red = m * d * 4  # the bulk reduce reads the dQ tile
        return {"S, dP (SS)": sdp, "dV, dK (RS)": dkv, "dQ (SS)": dq, "reduce": red}

    def regs_estimate(self):
        """dK + dV, and the two peaks beside them: Sᵀ and dPᵀ in the softmax; the dQ slice with the
        Pᵀ and dSᵀ A fragments (16-bit) where dQ is computed beside dV and dK."""
        dkdv = 2 * 64 * self.d // 128
        sdp = 2 * 64 * self.m // 128
        dq = self.m * self.d // (128 * self.w) + sdp // 2
        return dkdv, sdp, dq


TILES = [
    Tile("d128 80x128 (today, non-causal)", 80, 128, 128, 240, "cols"),
    Tile("d128 64x128 (today, causal)", 64, 128, 128, 240, "cols"),
    Tile("d64 128x128 (today)", 128, 128, 64, 240, "rows"),
    Tile("d64 64x192 (3 warpgroups, candidate)", 64, 192, 64, 160, "rows"),
]


def main():
    base = {}
    for t in TILES:
        wr, rd = t.writes(), t.reads()
        pairs = t.m * t.n
        ws, rs = sum(wr.values()), sum(rd.values())
        dkdv, sdp, dq = t.regs_estimate()
        print(f"{t.name}: {t.w} consumer warpgroups")
        print("  writes per step  " + ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in wr.items()) + f"; total {ws / 1024:.0f} KiB")
        print("  reads per step   " + ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in rd.items()) + f"; total {rs / 1024:.0f} KiB")
        print(f"  per query-key pair: writes {ws / pairs:.2f} B, reads {rs / pairs:.2f} B (FLOPs {10 * t.d})")
        print(f"  registers per consumer thread: dK+dV {dkdv} and the larger of S+dP {sdp} and dQ with the"
              f" P, dS fragments {dq}: {dkdv + max(sdp, dq)} of {t.regs} (plus ~30 addresses and loop values)")
        base.setdefault(t.d, (ws / pairs, rs / pairs))
        bw, br = base[t.d]
        if (ws / pairs, rs / pairs) != (bw, br):
            print(f"  against the first d{t.d} tile: writes {100 * (ws / pairs / bw - 1):+.0f}%, reads {100 * (rs / pairs / br - 1):+.0f}%")
    # The d64 candidate fits its registers with the usual ~30 for addresses and loop values, and
    # trades fewer writes for more reads (the NOTES' reading of session 31).
    dkdv, sdp, dq = TILES[-1].regs_estimate()
    assert dkdv + max(sdp, dq) + 30 <= TILES[-1].regs, "the 3-warpgroup d64 tile does not fit 160 registers"


if __name__ == "__main__":
    main()
