"""Time torch SDPA's backends (flash, cuDNN, efficient) on the shapes of bench/shapes.toml.

The method and the records are those of `python -m flashcore bench` (python/flashcore/_bench.py),
loaded here by path so this script also runs where the flashcore package is not installed:
CUDA events, warm-up, median of >= 20 runs, L2 flushed before each timed run, errors against
float64 on sampled query rows. `--suite all` includes the backward rows (suite `bwd`, records with
mode "bwd": each backend's backward alone, timed through `torch.autograd.grad` on a kept graph).

    python bench/peers.py --suite all --json out.json
"""

import argparse
import importlib.util
import pathlib
import sys

_SPEC = importlib.util.spec_from_file_location(
    "flashcore_bench", pathlib.Path(__file__).resolve().parent.parent / "python" / "flashcore" / "_bench.py"
)
_bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_bench)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default="all")
    ap.add_argument("--json")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--only")
    a = ap.parse_args()
    suites = _bench.BENCH_SUITES if a.suite == "all" else [a.suite]
    recs = _bench.run(suites, list(_bench.sdpa_backends()), iters=max(a.iters, 20), only=a.only)
    if a.json:
        _bench.write_json(recs, a.json)
        print(f"wrote {a.json}")
    return _bench.exit_code(recs, validate=False)


if __name__ == "__main__":
    sys.exit(main())
