"""What the user hands the ``Collector``, checked and described for run.json."""

from __future__ import annotations

import torch

from weightreport.errors import WeightReportError


def positive_int(name: str, value: object, minimum: int = 1) -> int:
    """``value``, checked to be an integer of at least ``minimum`` (booleans are refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        msg = f"{name} must be an integer >= {minimum}, not {value!r}"
        raise WeightReportError(msg)
    return value


def unique_parameters(modules) -> tuple[list[tuple[str, torch.Tensor]], dict[str, list[str]]]:
    """Each parameter once, under the first name it has (tied weights are one tensor), and
    the other names of each shared one."""
    params, first, aliases = [], {}, {}
    for m, module in modules:
        for p, t in module.named_parameters(recurse=False):
            name = f"{m}.{p}" if m else p
            if id(t) in first:
                aliases.setdefault(first[id(t)], []).append(name)
                continue
            first[id(t)] = name
            params.append((name, t))
    return params, aliases


def to_float(key: str, value: object) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            msg = f"scalar {key!r} is a tensor of {value.numel()} elements; pass one number"
            raise WeightReportError(msg)
        return float(value.detach())
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        msg = f"scalar {key!r} must be a number, not {type(value).__name__}"
        raise WeightReportError(msg) from None


def describe_filter(items) -> list[str] | None:
    if items is None:
        return None
    return [i if isinstance(i, str) else getattr(i, "__name__", str(i)) for i in items]


def shape_of(probe: object) -> object:
    if probe is None:
        return None
    if isinstance(probe, torch.Tensor):
        return list(probe.shape)
    if isinstance(probe, (tuple, list)):
        return [shape_of(p) for p in probe]
    if isinstance(probe, dict):
        return {k: shape_of(v) for k, v in probe.items()}
    return type(probe).__name__
