"""``build_inspect_report``: checkpoint → HTML report (and JSON), with no training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from weightreport.report.build import REPORTS_DIR, write_output


@dataclass(frozen=True)
class BuiltInspection:
    """What ``build_inspect_report`` wrote: the HTML file and the JSON file (or None)."""

    html: Path
    json: Path | None


def build_inspect_report(checkpoint: str | Path, html: str | Path | None = None,
                         json: str | Path | None = None, title: str | None = None) -> BuiltInspection:
    """Inspect a checkpoint and write its HTML report and, optionally, its JSON.

    Args:
        checkpoint: a ``.safetensors``, ``.pt``, ``.pth`` or ``.bin`` state dict.
        html: the HTML file (default ``reports/<checkpoint stem>.html``).
        json: the JSON file, or None for none.
        title: the page title (default: the file name).

    Raises:
        WeightReportError: the checkpoint is missing, unreadable or unsafe; an output is unwritable.
    """
    from weightreport.inspect.model import inspect_model
    from weightreport.inspect.charts import inspect_charts
    from weightreport.inspect.analyse import inspect_checkpoint
    from weightreport.report.render.pages import render_inspect_html
    from weightreport.runfmt.writer import dump_json

    result = inspect_checkpoint(checkpoint)
    html_path = Path(html) if html is not None else REPORTS_DIR / f"{Path(checkpoint).stem or 'checkpoint'}.html"
    model = inspect_model(result, title)
    write_output(html_path, render_inspect_html(model, inspect_charts(model)).encode("utf-8"))
    json_path = None
    if json is not None:
        json_path = Path(json)
        write_output(json_path, (dump_json(result) + "\n").encode("utf-8"))
    return BuiltInspection(html=html_path, json=json_path)
