"""Special cells of a layer heatmap: the values its colour scale cannot show, in fixed colours.

A log colour scale has no place for 0, no scale has one for NaN or Inf, and a value that
was never measured (or that a page declines to colour, such as an unreliable alpha) has
none either. Every layer heatmap (the run report's glance, the compare, diff and series
pages) draws such a cell in one fixed colour per kind, with a legend entry for each kind
present and none for an absent one, so that a zero or a NaN looks the same on every page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import altair as alt
import numpy as np

ZERO, NONFINITE, UNMEASURED = "0", "NaN/Inf", "not measured"
SPECIAL_COLOURS = {ZERO: "#9e9e9e", NONFINITE: "#d6007e", UNMEASURED: "#d9dde3"}
"""The colour of each standard kind; a page's own kind (``colours``) defaults to ``UNMEASURED``'s."""
LABEL_PX = 6.5
"""An upper bound on the width of one legend label character at 10 px, for long kind names."""
DEFAULT_LABEL_LIMIT = 160
"""Vega's own legend label limit, in pixels."""


def special_kinds(values, log: bool, bad=None, unmeasured=None, unmeasured_label: str = UNMEASURED) -> np.ndarray:
    """Per value: ``""`` when the colour scale can show it, else the name of its special kind.

    Args:
        values: the values.
        log: the scale is logarithmic (0 and negatives become ``ZERO``).
        bad: per value, True where its source held NaN or Inf (``NONFINITE`` whatever the value).
        unmeasured: per value, True where it was not measured (``unmeasured_label``, over any other kind).
        unmeasured_label: the name of that kind on this chart.
    """
    v = np.asarray(values, dtype=float)
    flagged = ~np.isfinite(v) if bad is None else ~np.isfinite(v) | np.asarray(bad, bool)
    kinds = np.where(flagged, NONFINITE, np.where((v <= 0) & log, ZERO, ""))
    if unmeasured is not None:
        kinds = np.where(np.asarray(unmeasured, bool), unmeasured_label, kinds)
    return kinds


def present_kinds(kinds: Iterable[str]) -> list[str]:
    """The special kinds among ``kinds``: the standard ones in their fixed order, then the others as met."""
    seen = [k for k in dict.fromkeys(kinds) if k]
    return [k for k in SPECIAL_COLOURS if k in seen] + [k for k in seen if k not in SPECIAL_COLOURS]


def special_scale(present: list[str], colours: Mapping[str, str] | None = None) -> alt.Scale:
    """A fixed colour for each special kind present (``colours`` adds or overrides a page's own)."""
    palette = {**SPECIAL_COLOURS, **(colours or {})}
    return alt.Scale(domain=present, range=[palette.get(k, SPECIAL_COLOURS[UNMEASURED]) for k in present])


def special_legend(present: list[str]) -> alt.Legend:
    """The special kinds' legend, right of the chart, with room for a long kind name."""
    longest = max((len(k) for k in present), default=0)
    wide = {"labelLimit": int(LABEL_PX * longest) + 8} if LABEL_PX * longest > DEFAULT_LABEL_LIMIT else {}
    return alt.Legend(orient="right", symbolType="square", **wide)
