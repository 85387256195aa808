"""Benchmark: report build time, output size and peak memory on a ResNet-50-sized run.

    python bench/report_build.py [--run DIR] [--snapshots 2000] [--no-pdf]

Writes a synthetic run (≈200 parameter tensors shaped like ResNet-50's, 2000 snapshots;
tests/report/synthetic.py) unless ``--run`` names an existing one, then builds the
HTML, and the HTML with the PDF, each in a fresh process so peak memory (max RSS) is
that build's alone. Targets: HTML ≤ 10 s, HTML + PDF ≤ 60 s, peak memory ≤ 1.5 GB.
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
from weightreport.report.build import build_report
t1 = time.perf_counter()
built = build_report(sys.argv[1], html=sys.argv[2], pdf=sys.argv[3] if len(sys.argv) > 3 else None)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "build_s": t2 - t1,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, "tests/report")
from synthetic import resnet50_spec, write_run
write_run(Path(sys.argv[1]), resnet50_spec(int(sys.argv[2])))
"""


def _build(run: Path, out: Path, pdf: bool) -> dict:
    args = [sys.executable, "-c", CHILD, str(run), str(out / "r.html")]
    if pdf:
        args.append(str(out / "r.pdf"))
    proc = subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT)
    fig = json.loads(proc.stdout.strip().splitlines()[-1])
    fig["html_mb"] = (out / "r.html").stat().st_size / 1e6
    if pdf:
        fig["pdf_mb"] = (out / "r.pdf").stat().st_size / 1e6
    return fig


def main() -> None:
    """Generate or reuse the run, build it, print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, default=None, help="an existing run directory to build")
    p.add_argument("--snapshots", type=int, default=2000)
    p.add_argument("--no-pdf", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = args.run
        if run is None:
            # In its own process: writing takes about 20 GB, and a child's max RSS starts
            # from its parent's (Linux keeps ru_maxrss across fork and exec), which would
            # make every build below report the writer's peak.
            t0 = time.perf_counter()
            run = tmp / "resnet50"
            subprocess.run([sys.executable, "-c", WRITER, str(run), str(args.snapshots)],
                           check=True, cwd=ROOT)
            print(f"synthetic run written in {time.perf_counter() - t0:.1f} s")
        html = _build(run, tmp, pdf=False)
        print(f"HTML      : {html['build_s']:6.2f} s build (+{html['import_s']:.2f} s import), "
              f"{html['html_mb']:.2f} MB, peak {html['peak_mb']:.0f} MB   [targets: 10 s, 10 MB, 1536 MB]")
        if not args.no_pdf:
            both = _build(run, tmp, pdf=True)
            print(f"HTML + PDF: {both['build_s']:6.2f} s build (+{both['import_s']:.2f} s import), "
                  f"PDF {both['pdf_mb']:.2f} MB, peak {both['peak_mb']:.0f} MB   [targets: 60 s, 1536 MB]")


if __name__ == "__main__":
    main()
