"""``build_compare``: 2–50 run directories → one comparison page (HTML), Markdown or JSON."""

from __future__ import annotations

from pathlib import Path

from weightreport.compare.page import BuiltDiff
from weightreport.compare.sweep import MAX_RUNS, MIN_RUNS, Sweep, sweep_runs
from weightreport.compare.sweep_charts import sweep_charts
from weightreport.errors import WeightReportError
from weightreport.report.charts import Chart
from weightreport.report.render.env import environment
from weightreport.report.render.output import REPORTS_DIR, write_output
from weightreport.report.render.pages import PageSection, render_page
from weightreport.runfmt.reader import load_run
from weightreport.runfmt.writer import dump_json

FORMATS = ("html", "md", "json")
MD_CONFIG_KEYS = 4
"""The Markdown table shows at most this many differing config keys (the HTML shows all)."""


def build_compare(paths: list[str | Path], output: str | Path | None = None, fmt: str = "html",
                  thresholds=None) -> BuiltDiff:
    """Compare runs and write the comparison.

    Args:
        paths: 2 to 50 run directories, in the order to show them.
        output: the file to write (default ``reports/compare-FIRST-and-N-more.html``; for
            Markdown and JSON, none: the text is returned to print).
        fmt: ``html``, ``md`` or ``json``.
        thresholds: the findings' ``Thresholds`` (the defaults when None).

    Raises:
        WeightReportError: a path is not a run, the number of runs is out of range, or the
            output is unwritable.
    """
    if fmt not in FORMATS:
        msg = f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}"
        raise WeightReportError(msg)
    paths = [Path(p) for p in paths]
    if not MIN_RUNS <= len(paths) <= MAX_RUNS:
        msg = (f"compare needs {MIN_RUNS} to {MAX_RUNS} run directories, got {len(paths)}"
               + ("; for one run use `weightreport build RUN`" if len(paths) == 1 else ""))
        raise WeightReportError(msg)
    seen = {}
    for p in paths:
        key = p.resolve()
        if key in seen:
            msg = f"{p} is given twice (as {seen[key]} too); pass each run once"
            raise WeightReportError(msg)
        seen[key] = p
    sweep = sweep_runs([load_run(p) for p in paths], thresholds)
    if fmt == "json":
        text = dump_json(sweep.to_dict())
    elif fmt == "md":
        text = render_sweep_md(sweep)
    else:
        text = render_sweep_html(sweep, sweep_charts(sweep))
    if output is None and fmt != "html":
        return BuiltDiff(text, None)
    path = Path(output) if output is not None else REPORTS_DIR / f"compare-{paths[0].name}-and-{len(paths) - 1}-more.html"
    write_output(path, text.encode("utf-8"))
    return BuiltDiff(text, path)


def render_sweep_md(sweep: Sweep) -> str:
    """The comparison as Markdown sized for a pull-request comment."""
    return environment().get_template("md/sweep.md").render(sw=sweep, config_keys=sweep.config_keys[:MD_CONFIG_KEYS])


def render_sweep_html(sweep: Sweep, charts: dict[str, list[Chart]], bundle: str | None = None) -> str:
    """The comparison page for a ``Sweep``."""
    n = len(sweep.runs)
    sections = [
        PageSection("runs", "Runs", f"The {n} runs in the order given: status, the config values that differ "
                    "between them, the final and best value of each scalar, and their findings per severity."),
        PageSection("curves", "Training curves", "Each scalar of every run, coloured by run; validation dashed. "
                    "Curves are bucket means, as in each run's report.",
                    empty=not charts.get("curves"), note="No run logged a scalar."),
        PageSection("glance", "Layers across runs", f"Each of the {len(sweep.shared)} tensors that every run "
                    "recorded (rows, in model order), per run (columns), at its last snapshot: the update ratio "
                    "‖w_t − w_prev‖/‖w_prev‖ and the weight norm relative to the first snapshot's. Log colour "
                    "scales; a 0 or a value that is not finite has its own colour.",
                    empty=not charts.get("glance"),
                    note="The runs share no parameter tensor with a finite value, so there is nothing to set side by side."),
        PageSection("findings", "Findings by run", "How many findings of each code and severity each run has."),
    ]
    return render_page("sweep.html", sections, charts, bundle, sw=sweep)
