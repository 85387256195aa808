"""Axis labels that read well on real models: whole channels, uncrowded log axes, whole layer names.

Each test draws a section's chart from hand-made section data with vl-convert (no browser)
and reads the SVG's axis labels, as ``test_chart_honesty`` does.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from test_chart_honesty import axis_labels, dynamics_svg, svg_of

from weightreport.report.charts import select_layer
from weightreport.report.charts.common import Datasets
from weightreport.report.charts.names import CHAR_PX, ELLIPSIS, label_px, short_labels, wrap_name
from weightreport.report.sections.activations import LINE_BREAK, PROBE_PX, probe_labels
from weightreport.report.sections.batchnorm import BatchNorm, batchnorm_charts
from weightreport.report.sections.outliers import Outliers, outlier_charts
from weightreport.report.sections.trajectories import Trajectories, trajectory_charts

pytest.importorskip("vl_convert")
NAN = math.nan


def _bn_charts(channels: int) -> dict:
    ch = pd.DataFrame({"module": "bn", "channel": range(channels), "batch_mean": np.linspace(0, 1, channels),
                       "running_mean": np.linspace(0, 0.9, channels), "batch_var": 1.0, "running_var": 0.9,
                       "weight": np.linspace(0.9, 1.1, channels), "bias": 0.0})
    sec = BatchNorm(key="batchnorm", title="t", channels=ch, layers=["bn"])
    return {c.title: c for c in batchnorm_charts(sec, Datasets())}


def _whole(labels: list[str]) -> bool:
    """Tick labels that are whole numbers, at least two, each once (no "0, 1, 1" from 0, 0.5, 1)."""
    shown = [s for s in labels if s]
    return len(shown) >= 2 and len(set(shown)) == len(shown) and all(re.fullmatch(r"\d+", s) for s in shown)


@pytest.mark.parametrize("channels", [2, 3, 5, 64])
def test_batchnorm_channel_axis_has_whole_channels(channels):
    """A BatchNorm layer of 2, 3, 5 or 64 channels gets channel ticks at distinct whole numbers only."""
    charts = _bn_charts(channels)
    for title in ("Batch vs running mean", "Batch vs running var"):
        x_labels = axis_labels(svg_of(select_layer(charts[title].full_spec(), "bn")))[0]
        assert _whole(x_labels), (title, x_labels)
    counts = axis_labels(svg_of(select_layer(charts["Gamma and beta"].full_spec(), "bn")))[1]
    assert _whole(counts), counts


def test_outlier_counts_axis_has_whole_counts():
    """Outlier counts of 0 and 1 get the y labels 0 and 1, not 0, 1, 1 (ticks at 0, 0.5, 1 in integer format)."""
    counts = pd.DataFrame({"tensor": "w", "step": range(0, 30, 3), "outliers_3std": 0, "outliers_6std": 0,
                           "outliers_iqr": [0] * 8 + [1, 1]})
    boxes = pd.DataFrame({"tensor": ["w"], "min": -1.0, "p1": -0.9, "p25": -0.3, "p50": 0.0, "p75": 0.3,
                          "p99": 0.9, "max": 1.0})
    chart = outlier_charts(Outliers(key="outliers", title="t", counts=counts, boxes=boxes, layers=["w"]),
                           Datasets())[0]
    labels = axis_labels(svg_of(select_layer(chart.full_spec(), "w")))[1]
    assert [s for s in labels if s] == ["0", "1"], labels


def _log_labels(update_ratio: list[float]) -> list[str]:
    return [s for s in axis_labels(dynamics_svg(update_ratio))[1] if s]


def _mantissa(label: str) -> float:
    v = float(label)
    return round(v / 10 ** math.floor(math.log10(v) + 1e-9), 6)


def test_update_ratio_log_axis_is_not_crowded():
    """Within one decade the update-ratio axis is labelled at 1, 2 and 5 × 10^k, not at every 1–9 × 10^k."""
    labels = _log_labels([NAN, 0.034, 0.026, 0.022, 0.02, 0.018, 0.016, 0.014, 0.013, 0.012])
    assert [float(s) for s in labels] == [0.01, 0.02, 0.05, 0.1], labels


def test_update_ratio_log_axis_over_decades_labels_powers_of_ten():
    """Over four decades only powers of ten are labelled, each once, and there are at least two."""
    labels = _log_labels([NAN, 1e-5, 1e-4, 1e-3, 1e-2, 3e-2])
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    assert all(_mantissa(s) == 1 for s in labels), labels


def test_update_ratio_log_axis_keeps_labels_for_a_constant_series():
    """A constant update ratio (a padded domain) still gets at least two distinct labels."""
    labels = _log_labels([NAN, 1e-3, 1e-3, 1e-3, 1e-3])
    assert len(set(labels)) >= 2, labels


BERT = [f"bert.encoder.layer.{i}.attention.output.{m}.{p}" for i in range(8)
        for m in ("dense", "LayerNorm") for p in ("weight", "bias")]
RESNET = [f"resnet.encoder.stages.{s}.layers.{b}.layer.{c}.convolution.weight"
          for s in range(4) for b in range(3) for c in range(3)]


@pytest.mark.parametrize("names", [BERT, RESNET, ["fc.weight", "weight", "a.b"]])
def test_short_labels_are_distinct_and_keep_the_end(names):
    """Shortened names are all different, each the whole name or an ellipsis and the name's own end."""
    labels = short_labels(names)
    assert len(set(labels)) == len(labels)
    for name, label in zip(names, labels, strict=True):
        assert label == name or (label.startswith(ELLIPSIS) and name.endswith("." + label[1:])), (name, label)
    assert short_labels(["fc.weight", "weight"]) == ["fc.weight", "weight"]
    assert short_labels(BERT)[0] == ELLIPSIS + "layer.0.attention.output.dense.weight"


def test_box_plot_names_are_readable_whole():
    """The box plot labels each of 32 long BERT names in full or by a unique tail, never cut at the end."""
    boxes = pd.DataFrame({"tensor": BERT, "min": -1.0, "p1": -0.9, "p25": -0.3, "p50": 0.0, "p75": 0.3,
                          "p99": 0.9, "max": 1.0})
    (chart,) = outlier_charts(Outliers(key="outliers", title="t", boxes=boxes, layers=BERT), Datasets())
    labels = axis_labels(svg_of(chart.full_spec()))[1]
    assert labels == short_labels(BERT)
    assert not any(s.endswith(ELLIPSIS) for s in labels), labels
    assert chart.spec["width"] + label_px(labels) <= 860


def test_short_labels_never_start_at_an_index():
    """A tail that would start at a bare index (``0.layers.0…``) takes the index's name along."""
    labels = short_labels(RESNET)
    assert all(not label[1:].split(".", 1)[0].isdigit() for label in labels if label.startswith(ELLIPSIS))
    assert labels[0] == ELLIPSIS + "stages.0.layers.0.layer.0.convolution.weight"
    assert short_labels(["m.0.a_very_long_module_name_that_is_long.weight", "m.1.a_very_long_module_name_that_is_long.weight"],
                        fit=30) == ["m.0.a_very_long_module_name_that_is_long.weight",
                                    "m.1.a_very_long_module_name_that_is_long.weight"]


def test_a_named_tail_stays_within_the_fit():
    """Where the longest fitting tail starts at an index and naming it overflows the fit, a shorter
    named tail that fits is taken (a lone ALBERT attention module's probe label)."""
    name = "albert.encoder.albert_layer_groups.0.albert_layers.0.attention"
    assert short_labels([name], fit=35) == [ELLIPSIS + "albert_layers.0.attention"]
    assert short_labels([name, name.replace("layers.0", "layers.1")], fit=35) == [
        ELLIPSIS + "albert_layers.0.attention", ELLIPSIS + "albert_layers.1.attention"]


def test_trajectories_of_a_bias_near_zero_fit_the_column():
    """Four panels of weights around 2e-9 (a BERT key bias) keep exponent labels and fit the 936-px column."""
    rng = np.random.default_rng(0)
    rows = [{"tensor": "k.bias", "index": i, "label": f"[{i}]", "step": s, "value": -2e-9 + 1e-10 * rng.standard_normal()}
            for i in range(8) for s in range(0, 30, 3)]
    sec = Trajectories(key="trajectories", title="t", data=pd.DataFrame(rows), layers=["k.bias"])
    (chart,) = trajectory_charts(sec, Datasets())
    svg = svg_of(select_layer(chart.full_spec(), "k.bias"))
    assert float(re.search(r'width="([\d.]+)"', svg).group(1)) <= 900
    labels = [s for axis in axis_labels(svg) for s in axis]
    assert any("e-" in s for s in labels) and not any(s.startswith(("0.0000", "−0.0000")) for s in labels)


def test_long_names_wrap_at_dots_within_the_line():
    """A label longer than a line breaks after dots from its end, no line starting at an index where
    another break fits, and no line longer than the line but a single part that is."""
    assert wrap_name("…layer.2.downsampling_layer.reduce_1x1.convolution", 25) == [
        "…layer.2.", "downsampling_layer.", "reduce_1x1.convolution"]
    assert wrap_name("…layer.0.layer.0.conv_3x3.convolution", 25) == ["…layer.0.layer.0.", "conv_3x3.convolution"]
    assert wrap_name("conv1", 25) == ["conv1"]
    assert wrap_name("x.a_very_long_single_part_name_that_is_long", 25) == [
        "x.", "a_very_long_single_part_name_that_is_long"]


def testprobe_labels_fit_their_panels_and_differ_across_figures():
    """MobileViT's probe modules (its names repeat ``conv_1x1.convolution`` in every stage, and two
    figures hold them) get labels whose lines fit a panel and that no two modules share; a reused
    module's later call keeps its module's label and its call number."""
    names = [f"mobilevit.encoder.layer.{k}.{part}.convolution" for k in (2, 3, 4)
             for part in ("conv_1x1", "conv_projection", "downsampling_layer.reduce_1x1")]
    labels = probe_labels([*names, names[0] + "#2"])
    assert len({labels[n][0] for n in names}) == len(names)
    assert all(len(line) <= PROBE_PX / CHAR_PX for n in names for line in labels[n][0].split(LINE_BREAK))
    assert labels[names[0]] == ("…layer.2. · conv_1x1.convolution", 1)
    assert labels[names[0] + "#2"] == (labels[names[0]][0], 2)
