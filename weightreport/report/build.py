"""``build_report``: run directory → HTML (and optionally PDF) report files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from weightreport.errors import WeightReportError
from weightreport.report.model import analyze, section_charts
from weightreport.report.render.html import render_html
from weightreport.report.render.output import REPORTS_DIR, safe_name, write_output
from weightreport.report.render.print_layers import parse_pdf_layers
from weightreport.runfmt.reader import load_run

STAGES = ("load", "analyse", "charts", "html", "pdf")


@dataclass(frozen=True)
class BuiltReport:
    """What ``build_report`` wrote.

    Attributes:
        html: the HTML file.
        pdf: the PDF file, or None when not asked for.
    """

    html: Path
    pdf: Path | None


def default_html(run_name: str) -> Path:
    """Where a run's HTML report goes by default: ``reports/<run name>.html``."""
    return REPORTS_DIR / f"{safe_name(run_name)}.html"


def build_report(run_dir: str | Path, html: str | Path | None = None, pdf: str | Path | bool | None = None,
                 title: str | None = None, thresholds=None,
                 progress: Callable[[str], None] | None = None, pdf_layers: str | int | None = None) -> BuiltReport:
    """Render a run directory into one self-contained HTML file and, optionally, a PDF.

    Args:
        run_dir: the run directory written by ``Collector``.
        html: the HTML file (default ``reports/<run name>.html``).
        pdf: the PDF file; ``True`` for the HTML's path with ``.pdf``; None or False for none.
        title: the report's title (default: the run's name).
        thresholds: the findings' ``Thresholds`` (the defaults when None).
        progress: called with each stage's name as it starts (for a progress bar).
        pdf_layers: which layers the PDF prints per-layer charts for: ``"flagged"`` (those the
            findings name), ``"all"``, or N (flagged plus the top N; None: 3).

    Returns:
        The paths written.

    Raises:
        WeightReportError: the run directory is missing or not a run, an output is
            unwritable, or ``pdf_layers`` is none of flagged, all or a whole number.
    """
    layers = parse_pdf_layers(pdf_layers)  # refused before any work is done
    step = progress or (lambda _stage: None)
    step("load")
    run = load_run(run_dir)
    html_path = Path(html) if html is not None else default_html(run.name)
    if html_path.exists() and html_path.is_dir():
        msg = f"{html_path} is a directory; pass a file name such as {html_path / 'report.html'}"
        raise WeightReportError(msg)
    if html_path.suffix.lower() == ".pdf":  # HTML written under a .pdf name would not open
        msg = (f"{html_path} names the HTML report but ends in .pdf; for a PDF pass "
               f"--pdf {html_path} (in Python, pdf={str(html_path)!r})")
        raise WeightReportError(msg)
    pdf_path = None
    if pdf is True:
        pdf_path = html_path.with_suffix(".pdf")
    elif pdf:
        pdf_path = Path(pdf)
    step("analyse")
    model = analyze(run, title=title, thresholds=thresholds)
    step("charts")
    charts = section_charts(model)
    step("html")
    write_output(html_path, render_html(model, charts).encode("utf-8"))
    if pdf_path is not None:
        step("pdf")
        from weightreport.report.render.pdf import render_pdf

        write_output(pdf_path, render_pdf(model, charts, layers))
    return BuiltReport(html=html_path, pdf=pdf_path)
