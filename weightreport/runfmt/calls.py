"""Names of a reused module's calls: ``layer1.0.relu`` for the first, ``layer1.0.relu#2`` after.

A module can run more than once in one forward pass: a ResNet BasicBlock applies its one
``relu`` after ``bn1`` and again after the residual add, a Bottleneck applies its ``relu``
three times, to tensors of different widths. The collector records every call as its own
row (``stats.tensor``, ``histograms.tensor``, ``batchnorm.module``): the first call keeps
the module's name, the k-th (k ≥ 2) is named ``<module>#<k>``. One row per call, not one
merged over the calls, because the calls can differ in shape and sit at different depths:
merging would hide a dead second call behind a healthy first one.

torch forbids only the dot in a child module's name, so in principle a module could be
called ``relu#2``; none that Python attributes, ``nn.Sequential`` or ``nn.ModuleList``
name ever are. Where the model's module names are known (the manifest's
``model.modules``), a name that is one of them is always read as that module.
"""

from __future__ import annotations

import re
from collections.abc import Container

CALL_MARK = "#"
"""Separates a module's name from its call number in the name of a later call."""

_CALL = re.compile(r"(.+)#([2-9]|[1-9][0-9]+)", re.ASCII)


def call_name(module: str, call: int) -> str:
    """The recorded name of ``module``'s ``call``-th call in a forward (1 = the module's own name)."""
    return module if call == 1 else f"{module}{CALL_MARK}{call}"


def split_call(name: str, modules: Container[str] | None = None) -> tuple[str, int]:
    """(module, call number) of a recorded name: ``("layer1.0.relu", 2)`` for ``layer1.0.relu#2``.

    Args:
        name: a recorded tensor or module name.
        modules: the model's module names, when known: a name among them is that module's
            first call, whatever it looks like.
    """
    if modules is not None and name in modules:
        return name, 1
    m = _CALL.fullmatch(name)
    return (m.group(1), int(m.group(2))) if m else (name, 1)


def call_label(name: str, modules: Container[str] | None = None) -> str:
    """How the report shows a recorded name: ``layer1.0.relu (call 2)``; other names unchanged."""
    module, call = split_call(name, modules)
    return name if call == 1 else f"{module} (call {call})"
