"""The logged metrics (scalars) in brief: first, final, best, and the range where "best" has no meaning.

A metric's goal comes from its name: ``min`` for losses, errors and perplexities, ``max``
for accuracies, F1, AUC, precision and recall, ``none`` for anything else (a learning
rate, a temperature), whose minimum and maximum are shown instead of a best.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

LOWER_IS_BETTER = ("loss", "err", "perplexity", "ppl", "mse", "mae", "nll")
"""Name parts of metrics where smaller is better."""
HIGHER_IS_BETTER = ("acc", "f1", "auc", "precision", "recall", "iou", "top1", "top5")
"""Name parts of metrics where larger is better."""


@dataclass(frozen=True)
class ScalarRow:
    """One scalar: its first and last value, its best (None when it has no goal) and its range.

    Attributes:
        name: the scalar's name.
        first: its value at its first step.
        last: its value at its last step (its final value).
        best: the minimum or maximum by ``goal``; None when ``goal`` is ``none`` or no value is finite.
        best_step: the step of ``best``.
        goal: ``min``, ``max`` or ``none``.
        min: the smallest finite value (None when none is finite).
        max: the largest finite value (None when none is finite).
    """

    name: str
    first: float
    last: float
    best: float | None
    best_step: int | None
    goal: str
    min: float | None = None
    max: float | None = None


def goal(name: str) -> str:
    """``min`` for losses and errors, ``max`` for accuracy-like metrics, ``none`` for any other name."""
    base = name.removeprefix("val_").lower()
    if base.startswith("lr"):
        return "none"
    if any(k in base for k in LOWER_IS_BETTER):
        return "min"
    return "max" if any(k in base for k in HIGHER_IS_BETTER) else "none"


def key_scalars(scalars: pd.DataFrame) -> list[ScalarRow]:
    """First, last, best and range of every scalar: losses first, then metrics with a goal, then the rest."""
    rows = []
    for name, g in scalars.groupby("name", sort=True):
        g = g.sort_values("step", kind="stable")
        v = g["value"].to_numpy(dtype=float)
        finite = np.isfinite(v)
        aim = goal(str(name))
        if not finite.any():
            rows.append(ScalarRow(str(name), float(v[0]), float(v[-1]), None, None, aim))
            continue
        idx = np.flatnonzero(finite)
        lo, hi = idx[np.argmin(v[idx])], idx[np.argmax(v[idx])]
        best = best_step = None
        if aim != "none":
            pick = lo if aim == "min" else hi
            best, best_step = float(v[pick]), int(g["step"].iloc[pick])
        rows.append(ScalarRow(str(name), float(v[0]), float(v[-1]), best, best_step, aim,
                              min=float(v[lo]), max=float(v[hi])))
    return sorted(rows, key=lambda r: scalar_order(r.name))


def scalar_order(name: str) -> tuple:
    """The sort key that lists scalars as summaries show them: losses, then the others, learning rates last."""
    return ("loss" not in name, goal(name) == "none", name.startswith("val_"), name)
