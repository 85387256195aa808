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
from weightreport.compare.charts import curve_chart, diff_charts
from weightreport.compare.diff import diff_runs
from weightreport.compare.distance import wasserstein_hist
from weightreport.compare.distance_grid import MAX_HEATMAP_ROWS, MAX_HEATMAP_STEPS
from weightreport.compare.page import render_diff_html, render_diff_md
from weightreport.report.charts.common import HEATMAP_DIGITS, Datasets, num
from weightreport.report.charts.special import SPECIAL_COLOURS, ZERO
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


def _rows(chart) -> list[dict]:
    """The heatmap's row records (``tensor, row, v, bad, label``: one value per step column)."""
    (rows,) = [v for v in chart.datasets.values() if v and "v" in v[0]]
    return rows


def _layer(spec: dict, field: str) -> dict:
    """The heatmap's layer colouring ``field`` (``value``: the log scale; ``state``: the special cells)."""
    (layer,) = [lay for lay in spec["layer"] if lay["encoding"].get("color", {}).get("field") == field]
    return layer


def test_distance_heatmap_is_layer_by_step_in_model_order(two_seeds, validator):
    """Rows are the shared tensors in model order, columns at most MAX_HEATMAP_STEPS step ranges, W1 on a log
    scale, each cell the largest W1 of its range (checked against the distances)."""
    a, b = two_seeds
    d = diff_runs(load_run(a), load_run(b))
    chart = _heatmap(d)
    spec = chart.full_spec()
    assert not sorted(validator.iter_errors(spec), key=str)
    assert [r["tensor"] for r in _rows(chart)] == d.shared and not d.grid.aggregated
    values = _layer(spec, "value")["encoding"]
    assert values["color"]["scale"]["type"] == "log"
    assert {t["field"] for t in values["tooltip"]} >= {"tensor", "steps", "value"}
    all_steps = sorted(set(d.distances["step"]))
    g = d.grid
    assert len(all_steps) > MAX_HEATMAP_STEPS and g.bins.count == MAX_HEATMAP_STEPS
    assert (g.bins.first, g.bins.last) == (all_steps[0], all_steps[-1])
    dist = d.distances.assign(bin=(d.distances["step"] - g.bins.first) * g.bins.count // g.bins.span)
    oracle = dist.groupby(["tensor", "bin"])["w1"].max()
    for r in _rows(chart):
        assert len(r["v"]) == MAX_HEATMAP_STEPS
        for col, v in enumerate(r["v"]):
            want = oracle.get((r["tensor"], col))
            assert v == (None if want is None else num(want, HEATMAP_DIGITS))  # 3 significant digits


def test_zero_distances_are_drawn_in_their_own_colour(tiny_run, validator):
    """A self-diff is all zeros: every cell is drawn, in the zero colour with its legend entry, none dropped."""
    run = load_run(tiny_run)
    d = diff_runs(run, run)
    chart = _heatmap(d)
    spec = chart.full_spec()
    assert not sorted(validator.iter_errors(spec), key=str)
    assert not [lay for lay in spec["layer"] if lay["encoding"].get("color", {}).get("field") == "value"]
    scale = _layer(spec, "state")["encoding"]["color"]["scale"]
    assert scale["domain"][0] == "0 (identical)" and scale["range"][0] == SPECIAL_COLOURS[ZERO]
    rows = _rows(chart)
    assert {r["tensor"] for r in rows} == set(d.shared)
    assert all(v == 0 for r in rows for v in r["v"] if v is not None)
    missing = any(r["bad"] for r in rows)  # a column none of whose histograms could be compared
    assert ("not comparable" in scale["domain"]) == missing


@pytest.fixture(scope="module")
def wide_pair(tmp_path_factory):
    """Two runs of a 20-block model with 320 tensors (a bias per weight), 30 snapshots each."""
    root = tmp_path_factory.mktemp("wide")
    layers = [(f"enc.layer.{i}.{m}", "LayerNorm" if m.startswith("ln") else "Linear",
               (6,) if m.startswith("ln") else (6, 6)) for i in range(20)
              for m in ("q", "k", "v", "o", "up", "down", "ln1", "ln2")]
    spec = Spec(name="wide", layers=layers, snapshots=30, heatmaps=False, probes=False)
    return write_run(root / "a", spec, seed=0), write_run(root / "b", spec, seed=1)


def test_a_wide_model_gets_a_bounded_heatmap_that_keeps_the_largest_distance(wide_pair, validator):
    """320 tensors: at most MAX_HEATMAP_ROWS × MAX_HEATMAP_STEPS cells, rows in model order, each cell the max of
    its tensors and steps (never a mean), so the largest distance is in its row and column; the page says so."""
    a, b = wide_pair
    d = diff_runs(load_run(a), load_run(b))
    assert len(d.shared) == 320 > MAX_HEATMAP_ROWS
    chart = _heatmap(d)
    spec = chart.full_spec()
    assert not sorted(validator.iter_errors(spec), key=str)
    g, rows = d.grid, _rows(chart)
    assert g.aggregated and len(rows) == len(g.rows) <= MAX_HEATMAP_ROWS
    assert len(rows) * len(rows[0]["v"]) <= MAX_HEATMAP_ROWS * MAX_HEATMAP_STEPS
    assert [t for m in g.members for t in m] == d.shared  # model order, every tensor once
    assert [r["tensor"] for r in rows] == g.rows
    # Every cell against the max over its tensors and step range, computed here from the distances.
    member_row = {t: i for i, m in enumerate(g.members) for t in m}
    dist = d.distances.assign(row=d.distances["tensor"].map(member_row),
                              bin=(d.distances["step"] - g.bins.first) * g.bins.count // g.bins.span)
    oracle = dist.groupby(["row", "bin"])["w1"].max()
    for (row, col), want in oracle.items():
        assert rows[row]["v"][col] == num(want, HEATMAP_DIGITS)
    tensor, step = d.max_w1_at
    row, col = member_row[tensor], (step - g.bins.first) * g.bins.count // g.bins.span
    assert rows[row]["v"][col] == num(d.max_w1, HEATMAP_DIGITS) and rows[row]["at"][col] == tensor
    mean = dist[(dist["row"] == row) & (dist["bin"] == col)]["w1"].mean()
    assert mean < d.max_w1 * 0.999 or len(g.members[row]) == 1  # a mean would have dimmed it
    assert "max over each row's tensors" in chart.title
    assert {t["title"] for t in _layer(spec, "value")["encoding"]["tooltip"]} >= {"largest in"}
    page = render_diff_html(d, diff_charts(d), bundle=BUNDLE_PLACEHOLDER)
    assert f"the 320 shared tensors in {len(g.rows)} rows" in page and "not their mean" in page


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
