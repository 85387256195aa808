"""weightreport: see what training did to your PyTorch network.

A ``Collector`` records weight, gradient, activation and BatchNorm histories while a
model trains; ``load_run`` reads them back; ``build_report`` renders them into a
self-contained HTML file and a PDF; ``show`` displays that report inline in a notebook.

The public names load lazily (module ``__getattr__``), so each side imports only
what it needs: ``from weightreport import Collector`` loads no report machinery,
and ``load_run`` loads no torch.
"""

from __future__ import annotations

from importlib import import_module as _import_module

__version__ = "0.1.0"

_EXPORTS = {
    "Collector": "weightreport.collect.collector",
    "FORMAT_VERSION": "weightreport.runfmt.schema",
    "Run": "weightreport.runfmt.reader",
    "WeightReportError": "weightreport.errors",
    "build_report": "weightreport.report.build",
    "load_run": "weightreport.runfmt.reader",
    "show": "weightreport.report.notebook",
}

__all__ = ["FORMAT_VERSION", "Collector", "Run", "WeightReportError", "__version__", "build_report",
           "load_run", "show"]

def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        msg = f"module 'weightreport' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(_import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
