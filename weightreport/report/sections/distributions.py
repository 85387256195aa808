"""The weight-distributions section: first vs last histogram and percentile bands, per parameter."""

from __future__ import annotations

from dataclasses import dataclass, field

import altair as alt
import pandas as pd

from weightreport.report.analysis.frames import PCTS, first_last, hist_rows
from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.analysis.sampling import MAX_LAYER_POINTS, model_order, pick_steps
from weightreport.report.charts.common import Chart, Datasets, make
from weightreport.report.charts.figures import bands_chart, hist_chart
from weightreport.report.sections.base import Section, SectionType

KEY, TITLE = "distributions", "Weight distributions"
SNAPSHOT_COLORS = alt.Scale(domain=["first", "last"], range=["#9aa5b1", "#1f77b4"])


@dataclass
class Distributions(Section):
    """Histograms (first vs last snapshot) and percentile bands over time, per tensor.

    Attributes:
        hist: ``tensor, snapshot ("first"/"last"), step, left, right, density``.
        bands: ``tensor, step, p1 ... p99`` downsampled.
        layers: tensors in model order.
    """

    hist: pd.DataFrame = field(default_factory=pd.DataFrame)
    bands: pd.DataFrame = field(default_factory=pd.DataFrame)
    layers: list[str] = field(default_factory=list)


def distributions(run, params: pd.DataFrame, hist: pd.DataFrame) -> Distributions:
    """Per parameter: first vs last histogram, and percentile bands over time."""
    if params.empty:
        return Distributions(key=KEY, title=TITLE, note="No parameter snapshots were recorded.")
    layers = model_order(params["tensor"], run.manifest)
    steps = pick_steps(params["step"])
    bands = params[params["step"].isin(steps)][["tensor", "step", *PCTS]].sort_values(["tensor", "step"])
    fl = first_last(params)[["tensor", "step", "snapshot"]]
    h = hist[hist["kind"] == "param"].merge(fl, on=["tensor", "step"])
    h = h.drop_duplicates(["tensor", "snapshot"])
    return Distributions(
        key=KEY, title=TITLE, hist=hist_rows(h, ["tensor", "snapshot", "step"]),
        bands=bands.reset_index(drop=True), layers=layers,
        caption=f"Left: the histogram at the last snapshot with the first overlaid. Right: "
                f"percentile bands (p1–p99, p5–p95, p25–p75, median) over time, at most "
                f"{MAX_LAYER_POINTS} snapshots per layer, evenly spaced.")


def build(t: RunTables) -> Distributions:
    """The distributions of ``t``'s parameters."""
    return distributions(t.run, t.params, t.histograms)


def distribution_charts(section: Distributions, ds: Datasets) -> list[Chart]:
    """Last-vs-first histogram and percentile bands, both following the layer selector."""
    hist = hist_chart(ds, section.hist, "snapshot", SNAPSHOT_COLORS, "histogram: first vs last snapshot",
                      layers=section.layers)
    bands = bands_chart(ds, section.bands, section.layers, "percentiles over time")
    return [make("Histogram", hist, ds, layered=True),
            make("Distribution over time", bands, ds, layered=True)]


SECTION = SectionType(KEY, TITLE, build, distribution_charts)
