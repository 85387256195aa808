"""Health findings: problems the report calls out at the top.

Each check is a pure function of the run's tables returning ``Finding`` objects;
``find_all`` runs them in a fixed order and sorts the result by severity, so the
list is deterministic. Later checks (vanishing gradients, exploding updates, ...)
add functions to ``CHECKS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

SEVERITIES = ("error", "warning", "info")
DEAD_FRACTION = 0.25
"""A layer with at least this fraction of dead units at the last snapshot is reported."""
MAX_STEPS_LISTED = 5


@dataclass(frozen=True)
class Finding:
    """One health finding.

    Attributes:
        code: a stable identifier (``nan_inf``, ``outliers``, ``dead_units``, ...).
        severity: ``error``, ``warning`` or ``info``.
        tensor: the tensor or module concerned, or ``""`` for the whole run.
        steps: the first steps at which it was seen (at most ``MAX_STEPS_LISTED``).
        message: what was found.
        suggestion: what to try.
    """

    code: str
    severity: str
    tensor: str
    steps: tuple[int, ...]
    message: str
    suggestion: str


def _steps(values) -> tuple[int, ...]:
    return tuple(int(s) for s in sorted(set(values))[:MAX_STEPS_LISTED])


def check_nan_inf(stats: pd.DataFrame, scalars: pd.DataFrame) -> list[Finding]:
    """NaN or Inf elements in any recorded tensor, and non-finite scalars."""
    out = []
    bad = stats[(stats["nan_count"] > 0) | (stats["inf_count"] > 0)]
    for (tensor, kind), g in bad.groupby(["tensor", "kind"], sort=True):
        nan, inf = int(g["nan_count"].max()), int(g["inf_count"].max())
        out.append(Finding(
            "nan_inf", "error", tensor, _steps(g["step"]),
            f"{kind} of {tensor} holds non-finite values (up to {nan} NaN and {inf} Inf) "
            f"at {len(g)} snapshot(s)",
            "lower the learning rate, clip gradients, or check the inputs and the loss for "
            "divisions by zero and log(0)"))
    if len(scalars):
        bad_s = scalars[~np.isfinite(scalars["value"].to_numpy(dtype=float))]
        for name, g in bad_s.groupby("name", sort=True):
            out.append(Finding(
                "nan_inf", "error", name, _steps(g["step"]),
                f"scalar {name} is NaN or infinite at {len(g)} step(s)",
                "training diverged: lower the learning rate or add gradient clipping"))
    return out


def check_outliers(stats: pd.DataFrame, scalars: pd.DataFrame) -> list[Finding]:
    """Parameters or gradients with values beyond 6 standard deviations at the last snapshot."""
    del scalars
    sel = stats[stats["kind"].isin(["param", "grad"])]
    if sel.empty:
        return []
    last = sel[sel["step"] == sel.groupby(["tensor", "kind"])["step"].transform("max")]
    out = []
    for row in last[last["outliers_6std"] > 0].sort_values(["kind", "tensor"]).itertuples():
        z = max(abs(row.max - row.mean), abs(row.min - row.mean)) / row.std if row.std > 0 else np.inf
        out.append(Finding(
            "outliers", "warning", row.tensor, (int(row.step),),
            f"{row.kind} of {row.tensor} has {int(row.outliers_6std)} value(s) beyond 6σ "
            f"(largest |z| = {z:.1f}) at the last snapshot",
            "look for a few exploding units; weight decay or gradient clipping keeps them bounded"))
    return out


def check_dead_units(stats: pd.DataFrame, scalars: pd.DataFrame) -> list[Finding]:
    """Activation layers whose fraction of dead units reaches ``DEAD_FRACTION``."""
    del scalars
    act = stats[(stats["kind"] == "activation") & stats["units"].notna() & (stats["units"] > 0)]
    if act.empty:
        return []
    act = act.assign(frac=act["dead_units"] / act["units"])
    last = act[act["step"] == act.groupby("tensor")["step"].transform("max")]
    out = []
    for row in last[last["frac"] >= DEAD_FRACTION].sort_values("tensor").itertuples():
        first = act[(act["tensor"] == row.tensor) & (act["frac"] >= DEAD_FRACTION)]["step"]
        out.append(Finding(
            "dead_units", "warning", row.tensor, _steps(first),
            f"{int(row.dead_units)} of {int(row.units)} units of {row.tensor} "
            f"({row.frac:.0%}) are dead (never positive on a batch) at the last snapshot",
            "lower the learning rate, use LeakyReLU/GELU, or check the initialisation"))
    return out


CHECKS: tuple[Callable[[pd.DataFrame, pd.DataFrame], list[Finding]], ...] = (
    check_nan_inf, check_outliers, check_dead_units)


def find_all(stats: pd.DataFrame, scalars: pd.DataFrame) -> list[Finding]:
    """Run every check; findings sorted by severity, code, tensor."""
    found = [f for check in CHECKS for f in check(stats, scalars)]
    return sorted(found, key=lambda f: (SEVERITIES.index(f.severity), f.code, f.tensor, f.steps))
