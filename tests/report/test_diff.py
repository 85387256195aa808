"""``weightreport diff``: a run against itself is zero everywhere; different architectures share layers."""

from __future__ import annotations

import math

import jsonschema
import numpy as np
import pandas as pd
import pytest
from altair.vegalite.v6.schema import load_schema
from conftest import XSS
from synthetic import Spec, small_spec, write_run

from weightreport.cli import main
from weightreport.compare.charts import MAX_HEATMAP_STEPS, curve_chart, diff_charts
from weightreport.compare.diff import diff_runs
from weightreport.compare.distance import wasserstein_hist
from weightreport.compare.page import render_diff_html, render_diff_md
from weightreport.report.charts.common import Datasets
from weightreport.report.render.env import fmt_num, md_escape
from weightreport.report.render.html import BUNDLE_PLACEHOLDER
from weightreport.runfmt.reader import load_run


def test_self_diff_is_zero(tiny_run):
    """A run compared with itself has zero W1, zero drift, zero deltas and no changed findings."""
    run = load_run(tiny_run)
    d = diff_runs(run, run)
    assert len(d.distances) > 0 and d.max_w1 == 0.0
    assert (d.distances["drift"] == 0).all() and d.distances["w1"].notna().any()
    assert (d.distances["w1"].dropna() == 0).all()  # NaN only where a histogram is empty
    for row in d.rows:
        assert all(row[k] == 0 or math.isnan(row[k]) for k in row if k.endswith("_delta") or k in ("w1", "drift"))
    assert d.appeared == [] and d.disappeared == [] and d.only_base == [] and d.only_candidate == []


def test_different_architectures(tiny_run, tmp_path):
    """Runs with different layers are compared on the shared tensors and the rest are listed."""
    other = write_run(tmp_path / "other", Spec(name="other", layers=[("fc1", "Linear", (16, 36)),
                                                                    ("head", "Linear", (3, 16))]), seed=3)
    d = diff_runs(load_run(tiny_run), load_run(other))
    assert d.shared == ["fc1.weight", "fc1.bias"]
    assert "conv1.weight" in d.only_base and d.only_candidate == ["head.weight", "head.bias"]
    assert all(w > 0 for w in d.distances["w1"] if not math.isnan(w))


def test_diff_page_and_markdown_escape(tiny_run, xss_run):
    """The comparison page and Markdown show names only escaped."""
    d = diff_runs(load_run(tiny_run), load_run(xss_run))
    page = render_diff_html(d, diff_charts(d), bundle=BUNDLE_PLACEHOLDER)
    assert XSS not in page and "<img" not in page and 'id="layers"' in page
    md = render_diff_md(d)
    assert XSS not in md and "<img" not in md


def test_diff_cli(tiny_run, tmp_path, capsys):
    """diff writes HTML to -o, prints Markdown with --format md, and exits 2 on a missing run."""
    out = tmp_path / "d.html"
    assert main(["diff", str(tiny_run), str(tiny_run), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    capsys.readouterr()
    assert main(["diff", str(tiny_run), str(tiny_run), "--format", "md"]) == 0
    assert "largest Wasserstein-1 distance 0" in capsys.readouterr().out
    assert main(["diff", str(tiny_run), str(tmp_path / "missing")]) == 2


def test_small_spec_is_importable():
    """The synthetic spec used above is the report tests' fixed small run."""
    assert small_spec().name == "tiny-run"


@pytest.fixture(scope="module")
def validator():
    """A validator for altair's bundled Vega-Lite schema."""
    return jsonschema.Draft7Validator(load_schema())


# --- glance views: the distance heatmap, the headline, the curve legends ----------------------


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    """The small spec written twice with different seeds, with more snapshots than heatmap columns."""
    root = tmp_path_factory.mktemp("seeds")
    spec = small_spec()
    spec.snapshots = MAX_HEATMAP_STEPS + 6
    return write_run(root / "a", spec, seed=0), write_run(root / "b", spec, seed=1)


def _oracle_max(a, b) -> tuple[str, int, float]:
    """The largest W1 over every (tensor, step) both runs' histogram tables hold, computed here."""
    ha, hb = (load_run(p).table("histograms") for p in (a, b))
    ha, hb = (h[h["kind"] == "param"] for h in (ha, hb))
    ib = {(r.tensor, int(r.step)): r for r in hb.itertuples(index=False)}
    best = ("", -1, -1.0)
    for r in ha.itertuples(index=False):
        other = ib.get((r.tensor, int(r.step)))
        if other is None:
            continue
        w = wasserstein_hist(r.edges, r.counts, other.edges, other.counts)
        if np.isfinite(w) and w > best[2]:
            best = (r.tensor, int(r.step), w)
    return best


def test_markdown_headline_names_the_tensor_and_step_of_the_largest_distance(two_seeds):
    """The Markdown headline's tensor, step and value are those of the largest W1 in the runs' own tables."""
    a, b = two_seeds
    tensor, step, w = _oracle_max(a, b)
    d = diff_runs(load_run(a), load_run(b))
    assert d.max_w1_at == (tensor, step) and d.max_w1 == pytest.approx(w, rel=1e-9)
    md = render_diff_md(d)
    assert f"largest Wasserstein-1 distance {fmt_num(w)}, in {md_escape(tensor)} at step {step}." in md
    page = render_diff_html(d, diff_charts(d), bundle=BUNDLE_PLACEHOLDER)
    assert f"in <b>{tensor}</b> at step {step}." in page


def _heatmap(d):
    charts = diff_charts(d)["distances"]
    assert len(charts) == 1 and charts[0].glance and charts[0].wide
    return charts[0]


def _values(chart) -> list[dict]:
    (values,) = chart.datasets.values()
    return values


def test_distance_heatmap_is_layer_by_step_in_model_order(two_seeds, validator):
    """Rows are the shared tensors in model order, columns at most MAX_HEATMAP_STEPS steps, W1 on a log scale."""
    a, b = two_seeds
    d = diff_runs(load_run(a), load_run(b))
    chart = _heatmap(d)
    spec = chart.full_spec()
    assert not sorted(validator.iter_errors(spec), key=str)
    layers = spec["layer"]
    assert layers[0]["encoding"]["y"]["sort"] == d.shared
    assert layers[0]["encoding"]["color"]["scale"]["type"] == "log"
    assert {t["field"] for t in layers[0]["encoding"]["tooltip"]} >= {"tensor", "step", "w1", "drift"}
    steps = sorted({v["step"] for v in _values(chart)})
    all_steps = sorted(set(d.distances["step"]))
    assert len(all_steps) > MAX_HEATMAP_STEPS and len(steps) == MAX_HEATMAP_STEPS
    assert steps[0] == all_steps[0] and steps[-1] == all_steps[-1]
    assert {v["tensor"] for v in _values(chart)} == set(d.shared)


def test_zero_distances_are_drawn_in_their_own_colour(tiny_run, validator):
    """A self-diff is all zeros: every cell is drawn, in the zero colour with its legend entry, none dropped."""
    run = load_run(tiny_run)
    d = diff_runs(run, run)
    chart = _heatmap(d)
    spec = chart.full_spec()
    assert not sorted(validator.iter_errors(spec), key=str)
    (layer,) = spec["layer"]  # no log layer: nothing is above zero
    fill = layer["encoding"]["fill"]
    assert fill["scale"]["domain"][0] == "0 (identical)"
    zeros = [v for v in _values(chart) if v["w1"] == 0]
    assert zeros and all(v["state"] == "0 (identical)" for v in zeros)
    missing = [v for v in _values(chart) if v["w1"] is None]
    assert ("not comparable" in fill["scale"]["domain"]) == bool(missing)


def test_curve_legends_keep_run_and_split_apart():
    """Colour is the run and line style the split, each in its own titled legend listing only drawn series."""
    df = pd.DataFrame({"step": [0, 1, 0, 1], "value": [1.0, 0.5, 1.1, 0.6], "metric": "acc",
                       "split": ["training", "training", "validation", "validation"], "run": "candidate"})
    spec = curve_chart(df, "acc", Datasets()).to_dict(validate=False)
    color, dash = spec["encoding"]["color"], spec["encoding"]["strokeDash"]
    assert color["field"] == "run" and color["title"] == "run" and color["scale"]["domain"] == ["candidate"]
    assert dash["field"] == "split" and dash["title"] == "split"
    assert dash["scale"]["domain"] == ["training", "validation"]
    assert dash["legend"]["symbolStrokeColor"] not in color["scale"]["range"]
    one = curve_chart(df[df["split"] == "training"].assign(run=["base", "candidate"]), "acc", Datasets())
    enc = one.to_dict(validate=False)["encoding"]
    assert enc["strokeDash"]["scale"]["domain"] == ["training"] and enc["color"]["scale"]["domain"] == ["base", "candidate"]
