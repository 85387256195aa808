"""The one Jinja environment (autoescape on) and the formatting filters templates use."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

import weightreport
from weightreport.errors import WeightReportError

_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                 0x2028: "\\u2028", 0x2029: "\\u2029"}


def templates_dir() -> Path:
    """The templates: inside the installed package, else the repository's ``templates/``."""
    packaged = Path(weightreport.__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    repo = Path(weightreport.__file__).parent.parent / "templates"
    if repo.is_dir():
        return repo
    msg = f"weightreport's templates are missing (looked in {packaged} and {repo}); reinstall weightreport"
    raise WeightReportError(msg)


def fmt_num(value, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; ``—`` for missing, NaN shown as NaN."""
    if value is None:
        return "—"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    text = f"{v:.{digits}g}"
    return text.replace("-", "−")


def fmt_int(value) -> str:
    """An integer with thousands separators; ``—`` for missing."""
    if value is None:
        return "—"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "—"


def fmt_pct(value, digits: int = 2) -> str:
    """A fraction as a percentage with ``digits`` significant digits (0.0123 → ``1.2 %``)."""
    try:
        v = float(value) * 100
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(v):
        return "—"
    return f"{v:.{digits}g} %"


_MD_SPECIAL = "\\`*_[]|~#!"


def md_escape(value) -> Markup:
    """Text safe inside GitHub-flavoured Markdown, table cells included.

    HTML is escaped (``<`` → ``&lt;``, which Markdown shows as ``<``), Markdown's
    inline syntax (backticks, emphasis, links, pipes, ...) is backslash-escaped, and
    line breaks become spaces so a value never breaks a table row.
    """
    text = " ".join(str(value).split())
    text = "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text)
    return Markup(str(escape(text)))


def dot_breaks(value) -> Markup:
    """Escaped text with a line-break opportunity (``<wbr>``) after every dot.

    A long qualified name (``encoder.layer.0.attention.self.query.weight``) then wraps
    between its parts, never inside one; the dots stay, so copying the name copies it whole.
    """
    return Markup(str(escape(str(value))).replace(".", ".<wbr>"))


def sort_key(value) -> str:
    """A cell's numeric sort key for the HTML table sorter (empty when missing).

    Ten significant digits: enough to order any two values a reader could tell apart,
    and a float's last bits (which differ between CPU kernels) stay out of the page.
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if not math.isfinite(v) else f"{v:.10g}"


def json_script(value) -> Markup:
    """JSON safe to place inside a ``<script>`` element: ``<``, ``>``, ``&`` are \\u-escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return Markup(text.translate(_JSON_ESCAPES))


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    """The shared Jinja environment."""
    env = Environment(loader=FileSystemLoader(str(templates_dir())), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters.update(num=fmt_num, int=fmt_int, pct=fmt_pct, sortkey=sort_key, json_script=json_script, md=md_escape,
                       dots=dot_breaks)
    return env
