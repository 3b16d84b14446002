"""Per row of a `python -m flashcore bench --json` file: flashcore's TF/s, cuDNN's, the best SDPA
backend's, and flashcore's ratio to each (the issues' targets are ratios to cuDNN timed in the
same process). FP8 rows (backend flashcore_fp8) are compared with flashcore_bf16 instead.

    python3 scripts/gpu/ratios.py RESULTS.json [...]
"""

import json
import signal
import sys
from collections import defaultdict


def main(paths):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    for path in paths:
        rows = defaultdict(dict)
        for r in json.load(open(path)):
            if r.get("tflops"):
                rows[r["name"]][r["backend"]] = r["tflops"]
        print(f"{'row':30} {'flashcore':>9} {'cudnn':>7} {'best sdpa':>9} {'/cudnn':>7} {'/best':>7}")
        for name, by in rows.items():
            if "flashcore_fp8" in by:
                fc, base = by["flashcore_fp8"], by.get("flashcore_bf16")
                print(f"{name:30} {fc:9.1f} {'':>7} {base or 0:9.1f} {'':>7} {fc / base if base else 0:7.3f}  (fp8 / bf16)")
                continue
            fc = by.get("flashcore")
            peers = {b: t for b, t in by.items() if b.startswith("sdpa_")}
            if fc is None or not peers:
                continue
            cudnn = peers.get("sdpa_cudnn")
            best = max(peers.values())
            rc = f"{fc / cudnn:7.3f}" if cudnn else f"{'-':>7}"
            print(f"{name:30} {fc:9.1f} {cudnn or 0:7.1f} {best:9.1f} {rc} {fc / best:7.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
