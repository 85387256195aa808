"""Benchmark: `weightreport compare` over a 20-run sweep of the demo's CNN.

    python bench/compare_sweep.py [--runs DIR] [--count 20] [--epochs 15]

Trains the demo's CNN on the digits at ``--count`` learning rates (log-spaced from
0.005 to 0.5) into DIR (a temporary folder by default; an existing DIR with that many
runs is reused), then builds the HTML comparison in a fresh process, so peak memory
(max RSS) is the build's alone. Targets: ≤ 10 s, HTML ≤ 10 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from weightreport.compare.sweep_page import build_compare
t1 = time.perf_counter()
build_compare(sys.argv[2:], output=sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "build_s": t2 - t1,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _train(root: Path, count: int, epochs: int) -> list[Path]:
    from weightreport.demo import train_cnn

    runs = []
    for i in range(count):
        lr = round(0.005 * 100 ** (i / max(count - 1, 1)), 5)
        run = root / f"lr{lr:g}"
        if not (run / "run.json").is_file():
            train_cnn(run, epochs=epochs, lr=lr, name=f"cnn-lr{lr:g}")
        runs.append(run)
    return runs


def main() -> None:
    """Train or reuse the sweep, build the comparison, print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=None, help="where the sweep's runs are (or go)")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--epochs", type=int, default=15)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.runs or Path(tmp) / "sweep"
        t = time.perf_counter()
        runs = _train(root, args.count, args.epochs)
        print(f"{len(runs)} runs ready in {time.perf_counter() - t:.1f} s ({args.epochs} epochs each)")
        out = Path(tmp) / "compare.html"
        proc = subprocess.run([sys.executable, "-c", CHILD, str(out), *map(str, runs)],
                              capture_output=True, text=True, check=True, cwd=ROOT)
        fig = json.loads(proc.stdout.strip().splitlines()[-1])
        mb = out.stat().st_size / 1e6
        print(f"compare of {len(runs)} runs: {fig['build_s']:.2f} s build (+{fig['import_s']:.2f} s import), "
              f"{mb:.2f} MB, peak {fig['peak_mb']:.0f} MB   [targets: 10 s, 10 MB]")


if __name__ == "__main__":
    main()
