"""A run's hyperparameters as JSON: ``Collector(config=...)`` → run.json ``config``.

Accepted: any mapping (a Lightning ``AttributeDict`` included), a dataclass (a Hugging
Face ``TrainingArguments`` included), an ``argparse.Namespace``, or an object with a
``to_dict()``. Values that JSON cannot hold are stored as their ``repr``, never dropped:
a path becomes its text, a tuple a list, a tensor of one number that number.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import math
from collections.abc import Mapping
from pathlib import PurePath

from weightreport.errors import WeightReportError

MAX_DEPTH = 6
"""Nesting below this depth is stored as ``repr``."""


def config_dict(config: object) -> dict | None:
    """``config`` as a JSON-ready dict with string keys (None stays None).

    Raises:
        WeightReportError: ``config`` is none of the accepted kinds.
    """
    if config is None:
        return None
    mapping = _as_mapping(config)
    if mapping is None:
        msg = (f"config must be a mapping, a dataclass, an argparse.Namespace or have to_dict(), "
               f"not {type(config).__name__}; pass dict(...) of your hyperparameters")
        raise WeightReportError(msg)
    return {str(k): _value(v, 1) for k, v in mapping.items()}


def _as_mapping(obj: object) -> Mapping | None:
    if isinstance(obj, Mapping):
        return obj
    if isinstance(obj, argparse.Namespace):
        return vars(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        try:
            out = to_dict()
        except Exception:  # a to_dict that needs arguments or fails: not a config
            return None
        return out if isinstance(out, Mapping) else None
    return None


def _value(value: object, depth: int) -> object:
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, enum.Enum):
        return _value(value.value, depth)
    if isinstance(value, PurePath):
        return str(value)
    if depth < MAX_DEPTH:
        if isinstance(value, (list, tuple)):
            return [_value(v, depth + 1) for v in value]
        mapping = _as_mapping(value) if not isinstance(value, type) else None
        if mapping is not None:
            return {str(k): _value(v, depth + 1) for k, v in mapping.items()}
    item = getattr(value, "item", None)  # a numpy or torch scalar
    if callable(item) and getattr(value, "ndim", None) == 0:
        try:
            return _value(item(), depth)
        except Exception:  # falls through to repr, never dropped
            pass
    return repr(value)


def _empty(value: object) -> bool:
    return value is None or (isinstance(value, (str, list, tuple, dict)) and not value)


def non_default_fields(obj: object) -> dict:
    """The fields of a dataclass instance that differ from their declared defaults.

    Values that are empty either way (``None`` against ``""`` or ``[]``, as a
    ``__post_init__`` may normalise them) count as the default.
    """
    out = {}
    for f in dataclasses.fields(obj):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            try:
                default = f.default_factory()
            except Exception:  # a factory that fails: treat the value as set
                default = dataclasses.MISSING
        else:
            default = dataclasses.MISSING
        value = getattr(obj, f.name, None)
        if _empty(value) and _empty(default):
            continue
        try:
            same = value == default
        except Exception:  # values that cannot be compared are kept
            same = False
        if same is not True:
            out[f.name] = value
    return out
