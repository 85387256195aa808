"""``show``: the full report inline in a notebook (Jupyter, JupyterLab, VS Code).

The notebook gets the very page that ``build`` writes, inside an ``<iframe srcdoc>``:
the page keeps its own Content-Security-Policy, script and styles, so it is
self-contained and offline and cannot touch the notebook's page. ``srcdoc`` holds
the page escaped as an attribute value (``html.escape`` with quotes), which keeps the
notebook's HTML well formed whatever the run's names contain.
"""

from __future__ import annotations

import html
from pathlib import Path

from weightreport.report.model import analyze, section_charts
from weightreport.report.render.html import render_html
from weightreport.report.render.output import write_output
from weightreport.runfmt.reader import Run, load_run

HEIGHT = 900
"""The inline frame's height in CSS pixels; the report scrolls inside it."""


class NotebookReport:
    """A rendered report that notebooks display inline (``_repr_html_``) and that can be saved.

    Attributes:
        page: the report page, the same HTML that ``build`` writes.
        name: the run's name.
        height: the inline frame's height in pixels.
    """

    def __init__(self, page: str, name: str, height: int = HEIGHT) -> None:
        self.page = page
        self.name = name
        self.height = height

    def _repr_html_(self) -> str:
        """The report as an inline frame (what Jupyter, JupyterLab and VS Code display)."""
        return (f'<iframe title="weightreport: {html.escape(self.name)}" srcdoc="{html.escape(self.page)}" '
                f'style="width: 100%; height: {int(self.height)}px; border: 1px solid #dde3ea;" '
                f'sandbox="allow-scripts" loading="eager"></iframe>')

    def save(self, path: str | Path) -> Path:
        """Write the report page to ``path`` (an HTML file, as ``build`` writes it) and return the path."""
        path = Path(path)
        write_output(path, self.page.encode("utf-8"))
        return path

    def __repr__(self) -> str:
        return f"<weightreport report of run {self.name!r}: display it in a notebook, or .save(path)>"


def _open(run_or_path) -> Run:
    if isinstance(run_or_path, Run):
        return run_or_path
    path = getattr(run_or_path, "path", run_or_path)  # a Collector: the run it is writing
    return load_run(path)


def show(run_or_path, title: str | None = None, thresholds=None, height: int = HEIGHT) -> NotebookReport:
    """The run's full report, for a notebook cell to display inline.

    Args:
        run_or_path: a run directory, a ``Run`` from ``load_run``, or a ``Collector`` (its
            run as flushed so far: a run still training shows the "running" banner).
        title: the report's title (default: the run's name).
        thresholds: the findings' ``Thresholds`` (the defaults when None).
        height: the inline frame's height in pixels.

    Returns:
        A ``NotebookReport``: the last expression of a cell displays it; ``.save(path)``
        writes the same page to a file.

    Raises:
        WeightReportError: the path is missing or is not a run.
    """
    run = _open(run_or_path)
    model = analyze(run, title=title, thresholds=thresholds)
    return NotebookReport(render_html(model, section_charts(model)), run.name, height)
