"""Which modules and which parameter elements a collector watches."""

from __future__ import annotations

import fnmatch
import random
import zlib
from collections.abc import Sequence

from torch import nn

from weightreport.errors import WeightReportError


def _matches(name: str, module: nn.Module, patterns: Sequence[str | type]) -> bool:
    for pattern in patterns:
        if isinstance(pattern, str):
            if fnmatch.fnmatchcase(name, pattern):
                return True
        elif isinstance(pattern, type):
            if isinstance(module, pattern):
                return True
        else:
            msg = f"include/exclude items must be name globs or module types, not {pattern!r}"
            raise WeightReportError(msg)
    return False


def select_modules(
    model: nn.Module,
    include: Sequence[str | type] | None,
    exclude: Sequence[str | type] | None,
) -> list[tuple[str, nn.Module]]:
    """The (qualified name, module) pairs to watch, in definition order.

    A module is watched when it matches ``include`` (or ``include`` is None) and does
    not match ``exclude``. A pattern is a glob on the qualified name (``"encoder.*"``)
    or a module type (``nn.Linear``). A module's own parameters follow it.
    """
    if isinstance(include, (str, type)):
        include = [include]
    if isinstance(exclude, (str, type)):
        exclude = [exclude]
    chosen = []
    for name, module in model.named_modules():
        if include is not None and not _matches(name, module, include):
            continue
        if exclude is not None and _matches(name, module, exclude):
            continue
        chosen.append((name, module))
    if include is not None and not chosen:
        msg = f"include={list(include)!r} matches no module of {type(model).__name__}; check the names"
        raise WeightReportError(msg)
    return chosen


def trajectory_indices(name: str, numel: int, limit: int, seed: int) -> list[int]:
    """Flat indices of the elements of a parameter whose exact values are recorded.

    Every element up to ``limit``; above that, a sorted sample of ``limit`` elements,
    the same for a given name, size and seed on every machine.
    """
    if numel <= limit:
        return list(range(numel))
    rng = random.Random(seed * 1_000_003 + zlib.crc32(name.encode()))
    return sorted(rng.sample(range(numel), limit))
