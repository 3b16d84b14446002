"""`python -m flashcore info|validate|bench`.

    python -m flashcore info
    python -m flashcore validate [--suite quick|full|edge|bwd|bwd-edge|...] [--json out.json]
    python -m flashcore bench [--suite all|seed|fa|gqa|long|bwd|bwd-edge|decode|varlen|fp8] [--json out.json] [--plot out.png]
                              [--iters 30] [--only NAME] [--no-peers] [--sequential] [--layout bhsd|bshd]

Suites `bwd` and `bwd-edge` (and the backward rows of `quick`/`full`) check and time the backward:
records with mode "bwd", gradients vs float64 on sampled (batch, kv head) groups, FLOPs = 2.5 x forward.
"""

import argparse
import json
import sys

from . import _bench


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flashcore", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info", help="versions, NVRTC, kernel cache, devices")
    v = sub.add_parser("validate", help="flashcore vs float64 on the shape matrix (sampled rows / groups)")
    v.add_argument("--suite", default="quick", help="a suite of shapes.toml, or `full` for every row")
    v.add_argument("--only", help="only rows whose name contains this")
    v.add_argument("--json")
    b = sub.add_parser("bench", help="flashcore and torch SDPA backends, timed in one process")
    b.add_argument("--suite", default="all", help="`all` = seed, fa, gqa, long, bwd; or one suite; decode / varlen: the inference paths")
    b.add_argument("--iters", type=int, default=30)
    b.add_argument("--only")
    b.add_argument("--json")
    b.add_argument("--plot", help="PNG path (needs matplotlib)")
    b.add_argument("--no-peers", action="store_true", help="time flashcore only")
    b.add_argument("--layout", choices=("bhsd", "bshd"),
                   help="the inputs' memory layout (fp8 suite: default bhsd; other suites: replaces each row's own)")
    b.add_argument("--sequential", action="store_true",
                   help="time each backend's runs as one block (default: in rounds, every backend once per round)")
    a = ap.parse_args(argv)
    if a.cmd == "info":
        from . import info

        print(json.dumps(info(), indent=1, default=str))
        return 0
    import torch

    if not torch.cuda.is_available():
        print("validate and bench need a CUDA GPU (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    if a.cmd == "validate":
        suites = [a.suite]
        recs = _bench.run(suites, ["flashcore"], only=a.only, timed=False)
        if a.json:
            _bench.write_json(recs, a.json)
        print(f"{sum(r['passed'] for r in recs)}/{len(recs)} rows within the bar")
        return _bench.exit_code(recs, validate=True)
    if a.suite == "fp8":
        recs = _bench.run_fp8(iters=max(a.iters, 20), only=a.only, rounds=not a.sequential,
                               layout=a.layout or "bhsd")
        if a.json:
            _bench.write_json(recs, a.json)
        return _bench.exit_code(recs, validate=False)
    suites = _bench.BENCH_SUITES if a.suite == "all" else [a.suite]
    backends = ["flashcore"] + ([] if a.no_peers else list(_bench.sdpa_backends()))
    if a.suite in _bench.INFER_SUITES:
        recs = _bench.run_infer(a.suite, backends, iters=max(a.iters, 20), only=a.only, rounds=not a.sequential)
    else:
        recs = _bench.run(suites, backends, iters=max(a.iters, 20), only=a.only, rounds=not a.sequential,
                          layout=a.layout)
    if a.json:
        _bench.write_json(recs, a.json)
        print(f"wrote {a.json}")
    if a.plot:
        print(f"wrote {a.plot}" if _bench.plot(recs, a.plot) else "no plot: matplotlib is not installed")
    return _bench.exit_code(recs, validate=False)


if __name__ == "__main__":
    sys.exit(main())
