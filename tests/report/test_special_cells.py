"""Special heatmap cells (0 on a log scale, NaN/Inf, not measured): one rule and one palette on every page."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weightreport.report.charts.cells import layer_heatmap
from weightreport.report.charts.common import Datasets
from weightreport.report.charts.layer_grid import heatmap_chart
from weightreport.report.charts.special import (
    NONFINITE,
    SPECIAL_COLOURS,
    UNMEASURED,
    ZERO,
    present_kinds,
    special_kinds,
    special_legend,
)


def _scale(spec: dict, channel: str) -> dict:
    (layer,) = [lay for lay in spec["layer"] if "scale" in lay["encoding"].get(channel, {})
                and "domain" in lay["encoding"][channel]["scale"] and lay["encoding"][channel]["type"] == "nominal"]
    return layer["encoding"][channel]["scale"]


def test_kinds_follow_one_rule():
    """0 and negatives are special only on a log scale; NaN, Inf and a flagged source are NaN/Inf; unmeasured wins."""
    v = np.array([1.0, 0.0, -2.0, np.nan, np.inf, 3.0, 4.0])
    assert special_kinds(v, log=True).tolist() == ["", ZERO, ZERO, NONFINITE, NONFINITE, "", ""]
    assert special_kinds(v, log=False).tolist() == ["", "", "", NONFINITE, NONFINITE, "", ""]
    bad = np.array([0, 0, 0, 0, 0, 1, 0], bool)
    unmeasured = np.array([0, 1, 0, 0, 0, 0, 1], bool)
    kinds = special_kinds(v, log=True, bad=bad, unmeasured=unmeasured, unmeasured_label="no scale")
    assert kinds.tolist() == ["", "no scale", ZERO, NONFINITE, NONFINITE, NONFINITE, "no scale"]
    assert present_kinds(kinds) == [ZERO, NONFINITE, "no scale"]  # standard kinds first, then the page's


def test_glance_and_layer_heatmaps_share_the_palette():
    """A 0 and a NaN have the same colours in the glance's heatmap and in the compare/series heatmap."""
    df = pd.DataFrame({"tensor": ["a", "a", "b"], "run": ["r1", "r2", "r1"], "v": [0.0, np.nan, 1.0]})
    cells = layer_heatmap(Datasets(), df, "v", rows=["a", "b"], columns=["r1", "r2"]).to_dict(validate=False)
    fill = _scale(cells, "fill")
    records = [{"tensor": "a", "row": 0, "v": [0.0, 1.0], "bad": [1], "label": ""}]
    glance = heatmap_chart(Datasets(), records, [{"group": "", "start": 0, "end": 1, "shade": 0}], rows=1,
                           scale="log", legend="v", first=0, span=2, columns=[{"b": 0, "steps": "0"},
                                                                              {"b": 1, "steps": "1"}],
                           present=[ZERO, NONFINITE], values=[1.0], width=190).to_dict(validate=False)
    color = _scale(glance, "color")
    assert fill == color == {"domain": [ZERO, NONFINITE],
                             "range": [SPECIAL_COLOURS[ZERO], SPECIAL_COLOURS[NONFINITE]]}


def test_a_pages_own_kind_gets_its_colour_and_room_for_its_name():
    """A kind the page names itself takes the colour it gives (else the unmeasured grey), and a long name is not cut."""
    df = pd.DataFrame({"tensor": ["a", "b"], "run": ["r1", "r1"], "v": [2.0, 3.0]})
    long = "alpha from fewer than 50 eigenvalues: unreliable"
    spec = layer_heatmap(Datasets(), df, "v", rows=["a", "b"], columns=["r1"], log=False,
                         special=np.array([long, "other"]), colours={long: "#123456"}).to_dict(validate=False)
    assert _scale(spec, "fill") == {"domain": [long, "other"], "range": ["#123456", SPECIAL_COLOURS[UNMEASURED]]}
    assert special_legend([long]).to_dict()["labelLimit"] >= 6 * len(long)
    assert "labelLimit" not in special_legend([ZERO, NONFINITE]).to_dict()
