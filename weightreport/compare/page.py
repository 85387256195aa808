"""``build_diff``: two run directories → a comparison page (HTML) or Markdown."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from weightreport.compare.charts import diff_charts
from weightreport.compare.diff import MAX_DIFF_STEPS, SIDE_STATS, RunDiff, diff_runs
from weightreport.compare.distance_grid import MAX_HEATMAP_STEPS
from weightreport.report.charts import Chart
from weightreport.report.render.env import environment
from weightreport.report.render.markdown import MAX_FINDINGS, MAX_LAYERS
from weightreport.report.render.output import REPORTS_DIR, write_output
from weightreport.report.render.pages import PageSection, render_page
from weightreport.runfmt.reader import load_run


@dataclass(frozen=True)
class BuiltDiff:
    """What ``build_diff`` made.

    Attributes:
        text: the page (HTML) or the Markdown.
        path: the file written, or None for Markdown with no output file (the caller prints it).
    """

    text: str
    path: Path | None


def build_diff(base: str | Path, candidate: str | Path, output: str | Path | None = None,
               fmt: str = "html", thresholds=None) -> BuiltDiff:
    """Compare two runs and write the comparison.

    Args:
        base: the base run directory.
        candidate: the candidate run directory.
        output: the file to write (default ``reports/diff-BASE-vs-CANDIDATE.html``; for
            Markdown, none: the text is returned to print).
        fmt: ``html`` or ``md``.
        thresholds: the findings' ``Thresholds`` (the defaults when None).

    Raises:
        WeightReportError: a path is not a run, or the output is unwritable.
    """
    base, candidate = Path(base), Path(candidate)
    diff = diff_runs(load_run(base), load_run(candidate), thresholds)
    if fmt == "md":
        text = render_diff_md(diff)
        if output is None:
            return BuiltDiff(text, None)
    else:
        text = render_diff_html(diff, diff_charts(diff))
    suffix = ".md" if fmt == "md" else ".html"
    path = Path(output) if output is not None else REPORTS_DIR / f"diff-{base.name}-vs-{candidate.name}{suffix}"
    write_output(path, text.encode("utf-8"))
    return BuiltDiff(text, path)


def render_diff_md(diff: RunDiff) -> str:
    """A comparison of two runs as Markdown for a ``RunDiff``."""
    return environment().get_template("md/diff.md").render(d=diff, max_layers=MAX_LAYERS * 2,
                                                           max_findings=MAX_FINDINGS)


def distances_caption(diff: RunDiff) -> str:
    """What the distance heatmap's rows, columns and cells are, saying so when rows are aggregated."""
    g = diff.grid
    rows = ("one row per shared tensor, in model order" if g is None or not g.aggregated else
            f"the {g.tensors} shared tensors in {len(g.rows)} rows of consecutive tensors (a module, or a run "
            "of them), in model order; a row's cell is the largest distance among its tensors, not their mean, "
            "so the layer furthest from its counterpart stands out, and the tooltip names it")
    return ("The Wasserstein-1 distance between the two runs' histograms of each shared tensor at the compared "
            f"steps: {rows}; grouped in the left gutter by parent module. Columns are at most {MAX_HEATMAP_STEPS} "
            "equal ranges of steps, a cell holding the largest distance in its range. Log colour scale; identical "
            "histograms (distance 0) and ones that could not be compared have their own colours. Hover for the "
            "numbers; click a row to select that layer below.")


def render_diff_html(diff, charts: dict[str, list[Chart]], bundle: str | None = None) -> str:
    """The run comparison page for a ``RunDiff``."""
    sections = [
        PageSection("findings", "Findings", "Findings of the candidate that the base does not have, and "
                    "the reverse (matched by code and tensor)."),
        PageSection("curves", "Training curves", "Each scalar of both runs: base grey, candidate blue; "
                    "validation dashed."),
        PageSection("distances", "Distance by layer and step", distances_caption(diff)),
        PageSection("layers", "Layers", "Per shared tensor, at the snapshot steps both runs share (at most "
                    f"{MAX_DIFF_STEPS}): the Wasserstein-1 distance between the two histograms and the "
                    "largest change of a percentile; then the statistics side by side.", tuple(diff.shared)),
    ]
    return render_page("diff.html", sections, charts, bundle, d=diff, side=list(SIDE_STATS))
