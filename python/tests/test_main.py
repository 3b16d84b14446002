"""`python -m flashcore` and its bench module: the shape matrix copy, records, plot, CLI."""

import json
import pathlib
import subprocess
import sys

import pytest
import torch

import flashcore
from flashcore import _bench, __main__ as cli
from conftest import max_err, qkv, rand, reference, reference_grads

REPO_SHAPES = pathlib.Path(__file__).resolve().parents[2] / "bench" / "shapes.toml"


def test_packaged_shapes_match_the_repo_file():
    if not REPO_SHAPES.is_file():
        pytest.skip("not running from a repo checkout")
    assert _bench.SHAPES.read_bytes() == REPO_SHAPES.read_bytes()


def test_load_shapes_fills_defaults_and_filters():
    rows = _bench.load_shapes(["quick"])
    assert rows and all("quick" in r["suites"] for r in rows)
    full = _bench.load_shapes(["full"])
    assert len(full) > len(rows)
    for r in full:
        assert r["hkv"] >= 1 and r["sk"] >= 1 and r["layout"] in ("bshd", "bhsd")
        assert r["mask"] in ("none", "causal", "causal_br") and r["dtype"] in _bench.DTYPES


def test_flops_rule():
    r = dict(b=2, h=3, sq=5, sk=7, d=16, mask="none")
    assert _bench.flops(r) == 4 * 2 * 3 * 5 * 7 * 16
    assert _bench.flops(dict(r, mask="causal")) == 2 * 2 * 3 * 5 * 7 * 16
    assert _bench.flops(dict(r, mode="bwd")) == 2.5 * 4 * 2 * 3 * 5 * 7 * 16
    assert _bench.flops(dict(r, mode="bwd", mask="causal_br")) == 2.5 * 2 * 2 * 3 * 5 * 7 * 16


def test_backward_rows_load_with_mode_bwd():
    bwd = _bench.load_shapes(["bwd"])
    assert bwd and all(r["mode"] == "bwd" and "bwd" in r["suites"] for r in bwd)
    assert "bwd" in _bench.BENCH_SUITES
    edge = _bench.load_shapes(["bwd-edge"])
    assert edge and all(r["mode"] == "bwd" for r in edge)
    assert any(r["sq"] != r["sk"] for r in edge) and any(r["layout"] == "bhsd" for r in edge)
    quick = _bench.load_shapes(["quick"])
    assert {r["mode"] for r in quick} == {"fwd", "bwd"}
    full = _bench.load_shapes(["full"])
    assert [r["mode"] for r in full] == sorted(r["mode"] for r in full)[::-1]  # forward rows first
    from flashcore._ops import supported_backward_head_dim

    assert all(supported_backward_head_dim(r["d"]) for r in full if r["mode"] == "bwd")


def test_pick_groups():
    r = dict(b=4, h=16, hkv=4, sq=4096, sk=4096)
    groups = _bench.pick_groups(r)
    assert groups[0] == (0, 0) and (3, 3) in groups and 2 <= len(groups) <= 3
    assert all(0 <= b < 4 and 0 <= kh < 4 for b, kh in groups) and len(set(groups)) == len(groups)
    assert _bench.pick_groups(dict(r, sq=1 << 16, sk=1 << 16)) == [(0, 0)]
    assert _bench.pick_groups(dict(b=1, h=2, hkv=1, sq=8, sk=8)) == [(0, 0)]


@pytest.mark.parametrize("mask", ["none", "causal", "causal_br"])
def test_reference_group_grads_match_the_oracle(mask):
    q, k, v = qkv(2, 4, 2, 11, 7, 16)
    dout = rand(2, 4, 11, 16)
    dq, dk, dv = reference_grads(q, k, v, dout, mask)
    for b, kh in [(0, 0), (1, 1), (0, 1)]:
        gq, gk, gv = _bench.reference_group_grads(q, k, v, dout, mask, (b, kh))
        assert max_err(gq, dq[b, 2 * kh:2 * kh + 2]) < 1e-12
        assert max_err(gk, dk[b, kh]) < 1e-12 and max_err(gv, dv[b, kh]) < 1e-12
    q16, k16, v16, d16 = (t.bfloat16() for t in (q, k, v, dout))
    naive = _bench.reference_group_grads(q16, k16, v16, d16, mask, (1, 1), dtype=torch.bfloat16)
    assert all(g.dtype == torch.bfloat16 and not torch.isnan(g).any() for g in naive)
    assert 0 < max_err(naive[0], dq[1, 2:4]) < 0.1


def test_grad_errors_report_the_gradient_closest_to_its_bar():
    w = [[torch.zeros(4)], [torch.zeros(3)], [torch.zeros(2)]]
    n = [[torch.full((4,), 0.1)], [torch.full((3,), 0.01)], [torch.full((2,), 0.1)]]
    g = [[torch.full((4,), 0.1)], [torch.full((3,), 0.015)], [torch.full((2,), 0.0)]]
    passed, (err, rel, nerr) = _bench._grad_errors(g, w, n)
    assert passed and err == pytest.approx(0.015) and nerr == pytest.approx(0.01)
    g[1] = [torch.full((3,), 0.03)]
    assert not _bench._grad_errors(g, w, n)[0]
    g[1] = [torch.tensor([0.0, float("nan"), 0.0])]
    assert not _bench._grad_errors(g, w, n)[0]


class _FakeClock:
    """Stands in for CUDA events (no GPU here): a log of what ran, and one tick per recorded event."""

    def __init__(self):
        self.now, self.log = 0.0, []

    def event(self, enable_timing=True):
        clock = self

        class Event:
            def record(self):
                clock.now += 1.0
                self.t = clock.now

            def elapsed_time(self, end):
                return end.t - self.t

        return Event()


@pytest.mark.parametrize("rounds", [True, False])
def test_time_rounds_rotates_the_first_backend_or_keeps_blocks(monkeypatch, rounds):
    clock = _FakeClock()
    monkeypatch.setattr(torch.cuda, "Event", clock.event)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)

    class Flush:
        def zero_(self):
            clock.log.append("flush")

    entered = []

    class Ctx:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            entered.append(self.name)

        def __exit__(self, *exc):
            return False

    def fn(name, cost):
        def run():
            clock.log.append(name)
            clock.now += cost  # a run's duration, between its two events

        return run

    fns = {"a": fn("a", 3.0), "b": fn("b", 5.0), "c": fn("c", 1.0)}
    ctxs = {"b": lambda: Ctx("b")}
    times = _bench.time_rounds(fns, Flush(), 4, ctxs, rounds=rounds)
    # Each timed run spans its own cost plus the end event's tick, whatever the order.
    assert times == {"a": 4.0, "b": 6.0, "c": 2.0}
    timed = lambda order: [x for name in order for x in ("flush", name)]  # noqa: E731
    if rounds:  # warm-ups first, then round i starts at backend i mod 3
        want = ["a"] * 3 + ["b"] * 3 + ["c"] * 3 + timed("abc" "bca" "cab" "abc")
    else:  # each backend: its 3 warm-ups, then its 4 timed runs
        want = sum(([n] * 3 + timed(n * 4) for n in "abc"), [])
    assert clock.log == want
    assert entered == ["b"] * 5  # b's warm-up block and each of its timed runs ran in its context


def test_a_backend_failing_in_the_rounds_is_timed_alone_or_left_out(monkeypatch):
    clock = _FakeClock()
    monkeypatch.setattr(torch.cuda, "Event", clock.event)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)

    class Flush:
        def zero_(self):
            pass

    calls = {"b": 0}

    def flaky():  # serves its warm-ups, then fails, as an out-of-memory run would
        calls["b"] += 1
        if calls["b"] > 3:
            raise RuntimeError("out of memory")

    logged = []
    fns = {"a": lambda: None, "b": flaky}
    times = _bench._time_row({"name": "row"}, fns, {}, Flush(), 4, True, logged.append)
    assert set(times) == {"a"} and times["a"] == 1.0
    assert len(logged) == 1 and "row" in logged[0] and "b" in logged[0]


def test_compare_keys_by_mode(tmp_path):
    def rec(backend, mode, tf, name="d128-s4k"):
        return dict(name=name, backend=backend, mode=mode, tflops=tf, passed=True)

    fc = [rec("flashcore", "fwd", 600.0), rec("flashcore", "bwd", 500.0, "bwd-d128-s4k"),
          dict(rec("flashcore", "bwd", 300.0), mode="bwd")]
    peers = [rec("sdpa_cudnn", "fwd", 660.0), rec("sdpa_cudnn", "bwd", 520.0, "bwd-d128-s4k"),
             rec("sdpa_cudnn", "bwd", 250.0), {k: v for k, v in rec("sdpa_flash", "x", 300.0).items() if k != "mode"}]
    (tmp_path / "a.json").write_text(json.dumps(fc))
    (tmp_path / "b.json").write_text(json.dumps(peers))
    script = pathlib.Path(__file__).resolve().parents[2] / "bench" / "compare.py"
    if not script.is_file():
        pytest.skip("not running from a repo checkout")
    p = subprocess.run([sys.executable, str(script), str(tmp_path / "m.json"), str(tmp_path / "a.json"),
                        str(tmp_path / "b.json")], capture_output=True, text=True, check=True)
    fwd, bwd = p.stdout.split("backward")
    assert "d128-s4k" in fwd and "600.0" in fwd and "(0.91x)" in fwd and "300.0 (2.00x)" in fwd  # no mode = fwd
    assert "bwd-d128-s4k" in bwd and "(0.96x)" in bwd and "300.0" in bwd and "(1.20x)" in bwd
    assert len(json.loads((tmp_path / "m.json").read_text())) == 7


@pytest.mark.parametrize("mask", ["none", "causal", "causal_br"])
def test_reference_rows_match_the_oracle(mask):
    q, k, v = qkv(2, 4, 2, 9, 13, 16)
    rows = torch.tensor([0, 3, 8])
    want, _ = reference(q, k, v, mask)
    assert max_err(_bench.reference_rows(q, k, v, mask, rows), want[:, :, rows]) < 1e-12
    naive = _bench.reference_rows(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask, rows, dtype=torch.bfloat16)
    assert naive.dtype == torch.bfloat16 and 0 < max_err(naive, want[:, :, rows]) < 0.1


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    recs = [dict(device="X", backend=b, name=n, tflops=t) for b, n, t in
            [("flashcore", "a", 100.0), ("flashcore", "b", 120.0), ("sdpa_flash", "a", 90.0)]]
    path = tmp_path / "p.png"
    assert _bench.plot(recs, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_exit_code():
    assert _bench.exit_code([], validate=False) == 1
    assert _bench.exit_code([dict(passed=False)], validate=True) == 1
    assert _bench.exit_code([dict(passed=False)], validate=False) == 0


def test_cli_info_prints_json():
    p = subprocess.run([sys.executable, "-m", "flashcore", "info"], capture_output=True, text=True, check=True)
    assert json.loads(p.stdout)["version"] == flashcore.__version__


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cli_bench_without_gpu_says_so(capsys):
    assert cli.main(["bench", "--suite", "seed"]) == 2
    assert "CUDA" in capsys.readouterr().err
