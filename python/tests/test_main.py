"""`python -m flashcore` and its bench module: the shape matrix copy, records, plot, CLI."""

import json
import pathlib
import subprocess
import sys

import pytest
import torch

import flashcore
from flashcore import _bench, __main__ as cli
from conftest import max_err, qkv, reference

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
