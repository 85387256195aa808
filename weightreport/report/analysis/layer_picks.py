"""Which layers matter most: those the findings name, and the rest ranked by one stated criterion.

The PDF cannot hold every layer's charts for a large model; it prints those that
``LayerPicks`` names (``render.print_layers`` chooses among them). The ranking is
computed here, with the other statistics, so rendering only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from weightreport.report.analysis.finding import SEVERITIES, Finding

CRITERION = "the largest update-to-weight ratio at the last snapshot"
"""How ``LayerPicks.ranked`` orders the layers, as the PDF states it."""


@dataclass(frozen=True)
class LayerPicks:
    """The layers findings name, and every parameter ranked by ``criterion``.

    Attributes:
        flagged: the tensors or modules the findings name, the most severe finding's first
            (errors, then warnings, then info; in the findings' order within each).
        ranked: the parameters, highest first by ``criterion``; those without a value
            follow in model order.
        criterion: how ``ranked`` is ordered, in words.
        anchored: per section key, the tensors or modules named by the warnings and errors
            whose chart is in that section (``Finding.anchor``), in ``flagged``'s order. Infos
            are left out: a run whose 198 tensors each had an info printed 733 charts (139 pages,
            about three minutes of WeasyPrint).
    """

    flagged: tuple[str, ...] = ()
    ranked: tuple[str, ...] = ()
    criterion: str = CRITERION
    anchored: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)


def layer_picks(findings: list[Finding], params: pd.DataFrame, order: list[str]) -> LayerPicks:
    """The findings' layers, and the parameters ranked by their last finite update ratio.

    Args:
        findings: the run's health findings.
        params: the stats rows of parameters (``tensor, step, update_ratio``).
        order: the tensors in model order (ties and tensors without a ratio keep it).
    """
    by_severity = sorted(findings, key=lambda f: SEVERITIES.index(f.severity) if f.severity in SEVERITIES
                         else len(SEVERITIES))
    flagged = tuple(dict.fromkeys(f.tensor for f in by_severity if f.tensor))
    anchored: dict[str, tuple[str, ...]] = {}
    for f in by_severity:  # an info is a note, not a problem: its layers count among the capped ones
        if f.tensor and f.severity != "info" and f.tensor not in anchored.get(f.anchor, ()):
            anchored[f.anchor] = (*anchored.get(f.anchor, ()), f.tensor)
    anchored = dict(sorted(anchored.items()))
    if params.empty:
        return LayerPicks(flagged=flagged, ranked=tuple(order), anchored=anchored)
    p = params[["tensor", "step", "update_ratio"]]
    p = p[np.isfinite(p["update_ratio"].astype(float))].sort_values(["tensor", "step"])
    last = p.groupby("tensor", sort=False)["update_ratio"].last().astype(float)
    position = {t: i for i, t in enumerate(order)}
    tensors = list(dict.fromkeys([*order, *params["tensor"].astype(str)]))
    ranked = sorted(tensors, key=lambda t: (t not in last.index, -float(last.get(t, 0.0)),
                                            position.get(t, len(position)), t))
    return LayerPicks(flagged=flagged, ranked=tuple(ranked), anchored=anchored)

