"""weightreport: see what training did to your PyTorch network.

A ``Collector`` records weight, gradient, activation and BatchNorm histories while a
model trains; ``load_run`` reads them back; ``build_report`` renders them into a
self-contained HTML file and a PDF.
"""

from __future__ import annotations

__version__ = "0.1.0"

from weightreport.collect.collector import Collector
from weightreport.errors import WeightReportError
from weightreport.report.build import build_report
from weightreport.runfmt.reader import Run, load_run
from weightreport.runfmt.schema import FORMAT_VERSION

__all__ = [
    "FORMAT_VERSION",
    "Collector",
    "Run",
    "WeightReportError",
    "__version__",
    "build_report",
    "load_run",
]
