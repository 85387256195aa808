"""``weightreport diff``: a run against itself is zero everywhere; different architectures share layers."""

from __future__ import annotations

import math

from conftest import XSS
from synthetic import Spec, small_spec, write_run

from weightreport.cli import main
from weightreport.compare.charts import diff_charts
from weightreport.compare.diff import diff_runs
from weightreport.compare.page import render_diff_html, render_diff_md
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
