"""Charts never mislead: zeros on log scales, constant series, lone points, legends, tick labels, empty charts.

Each test draws a section's chart from hand-made section data with vl-convert (no browser)
and reads the SVG: its axis labels, its marks' aria labels and its line paths.
"""

from __future__ import annotations

import itertools
import math
import re

import altair as alt
import numpy as np
import pandas as pd
import pytest
from synthetic import Spec, write_run

from weightreport.report.charts import select_layer
from weightreport.report.charts.axes import value_axis
from weightreport.report.charts.common import Datasets
from weightreport.report.model import analyze, section_charts
from weightreport.report.render.html import render_html
from weightreport.report.sections.activations import activations
from weightreport.report.sections.curves import curve_charts, curves
from weightreport.report.sections.dynamics import Dynamics, dynamics_charts
from weightreport.report.sections.heatmaps import Heatmap, Heatmaps, heatmap_charts
from weightreport.report.sections.outliers import OUTLIER_Z, outlier_charts, outliers
from weightreport.runfmt.reader import load_run

vl_convert = pytest.importorskip("vl_convert")
NAN = math.nan


def svg_of(spec: dict) -> str:
    """The chart's SVG from vl-convert."""
    return vl_convert.vegalite_to_svg(spec)


def axis_labels(svg: str) -> list[list[str]]:
    """Each axis's tick labels, in drawing order (x first, then y)."""
    groups = re.findall(r'<g class="mark-text role-axis-label"[^>]*>(.*?)</g>', svg)
    return [re.findall(r">([^<]+)</text>", g) for g in groups]


def mark_labels(svg: str, role: str) -> list[str]:
    """The aria labels of the marks of one kind (``point``, ``line mark``, ``text mark``)."""
    return re.findall(rf'aria-label="([^"]*)"[^>]*aria-roledescription="{role}"', svg)


def dynamics_svg(update_ratio: list[float], grad_norm: list[float] | None = None, which: int = 0) -> str:
    """The SVG of one dynamics chart for a layer ``w`` with the given series."""
    n = len(update_ratio)
    df = pd.DataFrame({"tensor": "w", "step": [10 * i for i in range(n)], "update_ratio": update_ratio,
                       "grad_norm": grad_norm or [1.0] * n, "dist_from_init": [0.5] * n})
    chart = dynamics_charts(Dynamics(key="dynamics", title="t", data=df, layers=["w"]), Datasets())[which]
    return svg_of(select_layer(chart.full_spec(), "w"))


def test_zero_update_ratio_is_drawn_on_a_floor_labelled_zero():
    """A zero update ratio on the log chart is a point mark at its step, and a text mark says "0"."""
    svg = dynamics_svg([NAN, 1e-3, 0.0, 0.0, 2e-3, 1e-3])
    points = mark_labels(svg, "point")
    zeros = [p for p in points if "value: 0.000" in p]
    assert {re.search(r"step: (\d+)", p).group(1) for p in zeros} == {"20", "30"}
    texts = re.findall(r'aria-roledescription="text mark"[^>]*>([^<]*)</text>', svg)
    assert "0" in texts, texts


def test_log_lines_do_not_bridge_zeros_or_gaps():
    """The update-ratio line breaks at a missing value and at zeros: its path has a move-to per run of values."""
    svg = dynamics_svg([NAN, 1e-3, 2e-3, 0.0, 3e-3, 2e-3, NAN, 1e-3, 1e-3])
    (path,) = re.findall(r'aria-roledescription="line mark" d="([^"]*)"', svg)
    assert path.count("M") == 3  # steps 10–20, 40–50, 70–80


def test_no_zero_marks_without_zeros():
    """A layer with no zero gets no floor line: the y axis spans only its own values."""
    svg = dynamics_svg([NAN, 1e-3, 2e-3, 1.5e-3])
    assert not [p for p in mark_labels(svg, "point") if "value: 0.000" in p]
    assert "1e-4" not in axis_labels(svg)[1]


def test_tiny_values_get_exponent_labels():
    """A gradient norm around 1e-8 is labelled in exponent notation, never as a row of zeros."""
    svg = dynamics_svg([NAN, 1e-3, 1e-3, 1e-3], grad_norm=[1.8e-8, 1e-8, 4e-9, 2e-9], which=1)
    labels = axis_labels(svg)[1]
    assert any("e-" in s for s in labels), labels
    assert not any(s.startswith("0.0000") for s in labels), labels
    assert len(set(labels)) == len(labels)


def test_close_values_get_distinct_tick_labels():
    """Ticks over a narrow range (0.2041 to 0.2045) are all different (the old '.3~g' gave 0.204 four times)."""
    df = pd.DataFrame({"x": range(5), "v": [0.2041, 0.2042, 0.2045, 0.2043, 0.2044]})
    spec = alt.Chart(df).mark_line().encode(
        x="x:Q", y=alt.Y("v:Q", scale=alt.Scale(zero=False), axis=value_axis("v"))).to_dict()
    labels = axis_labels(svg_of(spec))[1]
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels


def _scalars(rows: dict[str, list[float]]) -> pd.DataFrame:
    frames = [pd.DataFrame({"step": range(1, len(v) + 1), "name": k, "value": v}) for k, v in rows.items()]
    return pd.concat(frames, ignore_index=True)


def test_constant_lr_has_two_distinct_tick_labels():
    """A constant learning rate of 0.01 gets an axis of at least two ticks, one labelled 0.0100."""
    sec = curves(_scalars({"loss": [1 / s for s in range(1, 21)], "lr": [0.01] * 20}))
    (lr,) = [c for c in curve_charts(sec, Datasets()) if c.title == "lr"]
    labels = axis_labels(svg_of(lr.full_spec()))[1]
    assert len(set(labels)) >= 2, labels
    assert any(float(s) == 0.01 for s in labels), labels


def test_single_validation_point_is_drawn_and_legends_list_present_splits():
    """One val_loss point is a point mark; lr, which has no validation, has no validation legend entry."""
    sc = _scalars({"loss": [1 / s for s in range(1, 101)], "lr": [0.1 / s for s in range(1, 101)]})
    sc = pd.concat([sc, pd.DataFrame({"step": [100], "name": ["val_loss"], "value": [0.5]})], ignore_index=True)
    charts = {c.title: c for c in curve_charts(curves(sc), Datasets())}
    loss_svg = svg_of(charts["loss"].full_spec())
    assert [p for p in mark_labels(loss_svg, "point") if "split: validation" in p]
    lr_spec = charts["lr"].spec
    domains = [layer["encoding"]["color"]["scale"]["domain"] for layer in lr_spec["layer"]
               if "color" in layer.get("encoding", {})]
    assert domains and all(d == ["training"] for d in domains)
    assert "validation" not in svg_of(charts["lr"].full_spec())


def test_outlier_table_lists_only_real_outliers(tiny_run):
    """The top-outliers table holds no |z| at or below the threshold, and says so when it is empty."""
    model = analyze(load_run(tiny_run))
    top = model.outliers.top
    assert (top["z"].abs() > OUTLIER_Z).all()
    run = load_run(tiny_run)
    params = pd.DataFrame({"tensor": ["a", "a"], "step": [0, 10], "mean": [0.0, 0.0], "std": [1.0, 1.0],
                           "min": [-1.3, -1.2], "max": [1.1, 1.3], "p1": -1.0, "p25": -0.5, "p50": 0.0,
                           "p75": 0.5, "p99": 1.0, "outliers_3std": 0, "outliers_6std": 0, "outliers_iqr": 0})
    quiet = outliers(run, params, pd.DataFrame())
    assert quiet.top.empty
    assert quiet.no_counts and "3σ" in quiet.no_counts
    assert [c.title for c in outlier_charts(quiet, Datasets())] == ["Box and whisker"]
    model.by_key["outliers"] = quiet
    html = render_html(model, section_charts(model), bundle="/* b */")
    assert "No value lies more than 3 standard deviations" in html
    assert "No value lay beyond 3σ" in html


def test_all_zero_layer_is_marked_blank():
    """A layer whose distance from init is 0 throughout is listed in the chart's ``blank`` and says so."""
    df = pd.DataFrame({"tensor": ["w"] * 3 + ["v"] * 3, "step": [0, 10, 20] * 2,
                       "update_ratio": [NAN, 1e-3, 1e-3, NAN, 0.0, 0.0], "grad_norm": [1.0] * 6,
                       "dist_from_init": [0.0, 0.0, 0.0, 0.0, 0.1, 0.2]})
    charts = dynamics_charts(Dynamics(key="dynamics", title="t", data=df, layers=["w", "v"]), Datasets())
    by = {c.title: c for c in charts}
    assert by["Distance from init"].blank == {"w": "every value is 0 for this layer"}
    assert by["Update ratio"].blank == {"v": "every value is 0 for this layer"}
    svg = svg_of(select_layer(by["Distance from init"].full_spec(), "w"))
    assert "every value is 0 for this layer" in svg


def test_units_chart_that_shows_nothing_becomes_a_sentence(tmp_path):
    """When no unit is ever dead or saturated, there is no dead/saturated chart, only a note."""
    acts = pd.DataFrame({"tensor": "relu", "step": [0, 10], "units": [16, 16], "dead_units": [0, 0],
                         "saturated_units": [0, 0], **{p: 0.0 for p in ("p1", "p5", "p25", "p50", "p75", "p95", "p99")}})
    run = load_run(write_run(tmp_path / "r", Spec(name="r", layers=[("fc", "Linear", (2, 3))], snapshots=2,
                                                    heatmaps=False, probes=False)))
    sec = activations(run, acts, pd.DataFrame())
    assert sec.units.empty and "No unit was dead or saturated" in sec.no_units


def test_heatmap_column_titles_do_not_collide():
    """A 24 × 3 matrix's "step 0" and "step 345" titles are drawn at least a title's width apart."""
    maps = [Heatmap("c.weight", s, 24, 3, list(np.linspace(-1, 1, 72))) for s in (0, 345)]
    (chart,) = heatmap_charts(Heatmaps(key="heatmaps", title="t", maps=maps, layers=["c.weight"]), Datasets())
    svg = svg_of(select_layer(chart.full_spec(), "c.weight"))
    heads = re.findall(r'<g transform="translate\(([\d.]+),[-\d.]+\)"><path class="background"[^>]*/><g>'
                       r'<g class="mark-group role-title">.*?aria-label="Title text \'(step \d+)\'', svg)
    assert [h[1] for h in heads] == ["step 0", "step 345"]
    assert float(heads[1][0]) - float(heads[0][0]) >= 7 * len("step 0")


def test_step_labels_never_run_together():
    """A 300-step curve at half width: Vega's flushed last label ran into the one before it
    ("280300"); every step label is centred on its tick, a label's width (6 px a character at
    10 px) apart from the next."""
    sec = curves(_scalars({"loss": [1 / s for s in range(1, 301)]}))
    (loss,) = [c for c in curve_charts(sec, Datasets()) if c.title == "loss"]
    svg = svg_of(loss.full_spec())
    x_axis = re.findall(r'<g class="mark-text role-axis-label"[^>]*>(.*?)</g>', svg)[0]
    labels = re.findall(r'<text text-anchor="(\w+)" transform="translate\(([\d.]+),[\d.]+\)"[^>]*>([^<]+)</text>', x_axis)
    assert labels[-1][2] == "300" and {anchor for anchor, _, _ in labels} == {"middle"}, labels
    for (_, a, left), (_, b, right) in itertools.pairwise(labels):
        assert float(b) - float(a) >= 3 * (len(left) + len(right)), (left, right)
