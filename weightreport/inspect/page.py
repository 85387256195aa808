"""``build_inspect_report``: checkpoint → HTML report (and JSON), with no training."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from weightreport.inspect.model import STAT_COLUMNS, InspectModel
from weightreport.report.charts import Chart
from weightreport.report.render.output import REPORTS_DIR, write_output
from weightreport.report.render.pages import PageSection, render_page


@dataclass(frozen=True)
class BuiltInspection:
    """What ``build_inspect_report`` wrote: the HTML file and the JSON file (or None)."""

    html: Path
    json: Path | None


def build_inspect_report(checkpoint: str | Path, html: str | Path | None = None,
                         json: str | Path | None = None, title: str | None = None,
                         progress: Callable[[int, int], None] | None = None) -> BuiltInspection:
    """Inspect a checkpoint and write its HTML report and, optionally, its JSON.

    Args:
        checkpoint: a ``.safetensors``, ``.pt``, ``.pth``, ``.bin`` or ``.ckpt`` file, a shard
            index (``*.index.json``) or a ``save_pretrained`` directory.
        html: the HTML file (default ``reports/<checkpoint stem>.html``; a directory's or an
            index's checkpoint is named after the directory).
        json: the JSON file, or None for none.
        title: the page title (default: the checkpoint's name).
        progress: called with (bytes read, total bytes) while the tensors are read.

    Raises:
        WeightReportError: the checkpoint is missing, unreadable or unsafe; an output is unwritable.
    """
    from weightreport.inspect.analyse import inspect_checkpoint
    from weightreport.inspect.charts import inspect_charts
    from weightreport.inspect.checkpoint import open_checkpoint
    from weightreport.inspect.model import inspect_model

    ck = open_checkpoint(checkpoint)
    result = inspect_checkpoint(ck, progress=progress)
    html_path = Path(html) if html is not None else REPORTS_DIR / f"{ck.stem}.html"
    model = inspect_model(result, title)
    return write_inspection(html_path, render_inspect_html(model, inspect_charts(model)), result, json)


def write_inspection(html_path: Path, page: str, result: dict, json: str | Path | None) -> BuiltInspection:
    """Write an inspection's page and, when ``json`` names a file, its numbers as deterministic JSON."""
    from weightreport.runfmt.writer import dump_json

    write_output(html_path, page.encode("utf-8"))
    json_path = Path(json) if json is not None else None
    if json_path is not None:
        write_output(json_path, (dump_json(result) + "\n").encode("utf-8"))
    return BuiltInspection(html=html_path, json=json_path)


def render_inspect_html(model: InspectModel, charts: dict[str, list[Chart]], bundle: str | None = None) -> str:
    """The checkpoint report page."""
    order = "model order" if model.reordered else "stored (model) order"
    sections = [
        PageSection("summary", "Verdict: alpha and stable rank by depth", "Data-free measures of every "
                    "2-D or convolution weight, from its spectrum, against depth; then how many fall in "
                    "each alpha band."),
        PageSection("traps", "Correlation traps", "Rank-one structure from a few very large elements."),
        PageSection("quality", "Layer quality: alpha and stable rank", "Every matrix, in model order, and "
                    "how to read its numbers. Click a heading to sort."),
        PageSection("spectra", "Singular-value spectra", "The singular values of each 2-D weight "
                    "(conv kernels reshaped to out × in·k·k), largest first, on log-log axes; a straight "
                    "tail is a power law. Long spectra are drawn at log-spaced ranks.", tuple(model.matrices)),
        PageSection("histograms", "Histograms", "The distribution of the selected tensor's values.",
                    tuple(model.layers)),
        PageSection("tensors", "Tensors", f"Every floating-point tensor in {order}, with its statistics. "
                    "Click a heading to sort."),
    ]
    return render_page("inspect.html", sections, charts, bundle, m=model, columns=list(STAT_COLUMNS))
