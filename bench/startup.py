"""How long the command line takes to answer ``--help``, and the import cost of each side.

Run: python bench/startup.py   (medians of 7 fresh interpreters each)

The issue's target: ``weightreport --help`` within 0.5 s. The other rows show what each
side pays to import: the collector (torch, no report machinery) and the report builder
(pandas, altair, jinja2, no torch).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

CASES = {
    "weightreport --help": [sys.executable, "-m", "weightreport", "--help"],
    "python -c pass": [sys.executable, "-c", "pass"],
    "import Collector": [sys.executable, "-c", "from weightreport import Collector"],
    "import build_report": [sys.executable, "-c", "from weightreport import build_report"],
}


def main() -> None:
    for name, cmd in CASES.items():
        times = []
        for _ in range(7):
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        print(f"{name:<22} median {statistics.median(times):.3f} s  (min {min(times):.3f})")


if __name__ == "__main__":
    main()
