"""The statistics engine: one description of a tensor, filled by four backends.

``describe(tensors, bins)`` is the entry (``batch.py``): small tensors on the exact
host path (``exact.py``), large CPU tensors through the compiled kernels
(``compiled.py``, ``kernels.py``, ``kernels_describe.py``), the others with torch ops
(``torch_ops.py``); ``SplitStats`` (``split.py``) describes tensors split across
ranks. Every backend fills the summary fields of ``fields.SUMMARY``.

The names below are imported on first use, so that ``weightreport.stats.fields`` and
``weightreport.stats.grid`` load without torch or numba.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "describe": "weightreport.stats.batch",
    "Batch": "weightreport.stats.batch",
    "SMALL": "weightreport.stats.batch",
    "flat": "weightreport.stats.batch",
    "workspace": "weightreport.stats.batch",
    "describe_array": "weightreport.stats.exact",
    "describe_arrays": "weightreport.stats.exact",
    "Description": "weightreport.stats.fields",
    "SplitStats": "weightreport.stats.split",
    "comm_device": "weightreport.stats.split",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
