"""The statistics engine: one description of a tensor, filled by four backends.

``describe(tensors, bins)`` is the entry (``describe.py``): small tensors on the exact
host path (``exact.py``), large CPU tensors through the compiled kernels
(``compiled.py``, ``kernels.py``, ``kernels_describe.py``), the others with torch ops
(``torch_ops.py``); ``SplitStats`` (``split.py``) describes tensors split across
ranks. Every backend fills the summary fields of ``fields.SUMMARY``.

The names below are imported on first use, so that ``weightreport.stats.fields`` and
``weightreport.stats.grid`` load without torch or numba.
"""

from __future__ import annotations

import importlib
import sys
import types

_EXPORTS = {
    "describe": "weightreport.stats.describe",
    "Batch": "weightreport.stats.describe",
    "SMALL": "weightreport.stats.describe",
    "flat": "weightreport.stats.describe",
    "workspace": "weightreport.stats.describe",
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


class _Package(types.ModuleType):
    """This package, whose ``describe`` stays the function once its module is imported.

    Importing the submodule ``weightreport.stats.describe`` would otherwise set the
    package's attribute ``describe`` to that module (the import system's rule), and
    ``from weightreport.stats import describe`` would give the module, not the function.
    (Renaming the module would end the clash; ``inspect.analyse`` still imports it by name.)
    """

    def __setattr__(self, name: str, value) -> None:
        if name == "describe" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


_Package.__name__ = _Package.__qualname__ = "module"  # still a module to whoever asks by type name
sys.modules[__name__].__class__ = _Package
