"""What the training-framework integrations share: scalar extraction and the report step."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch


def scalar_items(metrics: Mapping) -> dict[str, float]:
    """The entries of ``metrics`` that are single finite-or-not numbers, as floats."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.detach().item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        out[str(key)] = float(value)
    return out


def split_validation(metrics: Mapping[str, float], prefixes=("val_", "val/", "eval_", "valid_")):
    """(training, validation) scalars; validation names are normalised to ``val_*``."""
    train, val = {}, {}
    for key, value in metrics.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                val["val_" + key[len(prefix):]] = value
                break
        else:
            train[key] = value
    return train, val


def maybe_build(run_dir: Path, build: bool) -> Path | None:
    """Build the HTML report of ``run_dir`` when asked; the report module loads only then."""
    if not build:
        return None
    from weightreport.report import build_report

    result = build_report(run_dir)
    return getattr(result, "html", result)


__all__ = ["maybe_build", "scalar_items", "split_validation"]
