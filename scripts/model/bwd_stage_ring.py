"""Model of the Hopper backward's staged dQ converter's ring (kernels/sm90/bwd_convert.cuh
run_staged; rows per buffer from kernels/sm90/bwd_config.cuh kStageRows, mirrored by
plan/backward.rs sm90_bwd_stage_rows): for every tile shape the kernel builds, with and without
FLASHCORE_SM90_BWD_DQ_BUFS=1,
  - the ring (4 buffers, an mbarrier and 24 bytes of addresses) fits the 227 KiB beside the tiles;
  - over many tiles in a row, each wait on a buffer's mbarrier uses the parity of the phase its
    copy completes. mbarrier.try_wait.parity P returns at once when the barrier's current phase
    has the other parity, so a wait whose parity is off passes on the previous phase and reads
    the buffer before the copy lands (the bug a review found in the first version, where a tile
    took the ring round once);
  - a buffer is refilled only after the wait for its previous copy (one copy in flight a buffer).
Then the same check with the rule removed must fail somewhere, so the model can see the bug.
    python3 scripts/model/bwd_stage_ring.py
"""

BUFS = 4
LIMIT = 227 * 1024
SLACK = 1024 + 64


def tiles_bytes(d, bm, dq_bufs):
    # kernels/sm90/bwd_config.cuh kSmemTiles (plan/backward.rs sm90_bwd_smem_bytes without slack).
    bn, row = 128, -(-d // 64) * 64 * 2
    base = 2 * bn * row + 2 * (2 * bm * row + 2 * bm * 4) + 2 * bn * bm * 2
    return base + dq_bufs * bm * d * 4


def dq_buffers(d, bm, one):
    two_fit = tiles_bytes(d, bm, 0) + 2 * bm * d * 4 + SLACK <= LIMIT
    return 2 if two_fit and not one else 1


def stage_rows(d, bm, one, even_rule=True):
    free = LIMIT - tiles_bytes(d, bm, dq_buffers(d, bm, one)) - SLACK - 8 * BUFS - 24
    for rows in (32, 16, 8):
        fits = BUFS * rows * d * 4 <= free
        whole = bm % (2 * BUFS * rows) == 0 if even_rule else bm % (BUFS * rows) == 0
        if fits and whole:
            return rows
    return None


def simulate(bm, rows, tiles):
    """run_staged's issue / wait order over `tiles` owned tiles; True if every wait is right."""
    pieces = bm // rows
    completed = [0] * BUFS  # phases completed per buffer's mbarrier
    issued = [0] * BUFS  # copies issued per buffer
    for _ in range(tiles):
        pending = {}
        for j in range(min(BUFS, pieces)):
            pending[j] = issued[j % BUFS]  # copy k completes phase k
            issued[j % BUFS] += 1
        for j in range(pieces):
            b, parity = j % BUFS, (j // BUFS) & 1
            k = pending.pop(j)
            # The copy has not landed yet (worst case): the wait must block, i.e. the barrier's
            # current phase k must have the parity waited on.
            if (completed[b] & 1) != parity:
                return False
            completed[b] += 1  # the copy lands; the wait returns
            if completed[b] != k + 1:
                return False
            if j + BUFS < pieces:
                assert issued[b] == completed[b], "a buffer refilled with a copy still in flight"
                pending[j + BUFS] = issued[b]
                issued[b] += 1
    return True


def main():
    checked = 0
    for d, bms in ((64, (128,)), (128, (64, 80))):
        for bm in bms:
            for one in (False, True):
                rows = stage_rows(d, bm, one)
                if rows is None:
                    continue
                ring = BUFS * (rows * d * 4 + 8) + 24
                assert tiles_bytes(d, bm, dq_buffers(d, bm, one)) + ring + SLACK <= LIMIT, (d, bm, one)
                assert simulate(bm, rows, tiles=7), (d, bm, one, rows)
                print(f"d{d} block_m {bm} dq buffers {dq_buffers(d, bm, one)}: {rows} rows a buffer, "
                      f"{bm // rows} pieces a tile, ring {ring} bytes, smem "
                      f"{tiles_bytes(d, bm, dq_buffers(d, bm, one)) + ring + SLACK}")
                checked += 1
    assert checked == 3, "expected d 64 (either knob) and d 128 at 64 rows with one dQ buffer"
    # Without the even-rounds rule, d 128 with one dQ buffer takes 16 rows (4 pieces, one round a
    # tile) and the second tile's first wait passes on the first tile's phase.
    rows = stage_rows(128, 64, True, even_rule=False)
    assert rows == 16 and not simulate(64, rows, tiles=2), "the model no longer sees the odd-rounds bug"
    print("staged ring: phases right on every configuration; the odd-rounds ring is caught")


if __name__ == "__main__":
    main()
