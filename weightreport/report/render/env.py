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
from weightreport.report.render.cache import template_cache
from weightreport.runfmt.calls import call_label

LONG_TABLE = 25
"""A table with more rows than this gets a filter box and scrolls inside a bounded height."""

_JSON_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                 ("\u2029", "\\u2029"))
"""Replaced one by one: ``str.replace`` runs in C, ``str.translate`` with a dict per character
(0.36 s of a 9 MB page)."""


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


def break_at_dots(value) -> Markup:
    """A dotted name (``layer1.0.conv1.weight``) that may wrap after each dot.

    The text is HTML-escaped first, then ``<wbr>`` goes after every dot, so user text
    stays text: the only markup in the result is the ``<wbr>`` elements added here.
    """
    return Markup(str(escape(str(value))).replace(".", ".<wbr>"))


def layer_label(value) -> str:
    """A recorded layer name as the report shows it: a reused module's later call,
    ``layer1.0.relu#2``, reads ``layer1.0.relu (call 2)`` (``runfmt.calls``); plain text."""
    return call_label(str(value))


def fmt_duration(seconds) -> str:
    """Seconds as a reader writes a duration (``0.42 s``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``)."""
    try:
        v = float(seconds)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(v) or v < 0:
        return "—"
    if v < 60:
        return f"{v:.3g} s"
    if v < 3600:
        return f"{int(v // 60)} min {int(v % 60):02d} s"
    return f"{int(v // 3600)} h {int(v % 3600 // 60):02d} min"


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
    for char, escaped in _JSON_ESCAPES:
        text = text.replace(char, escaped)
    return Markup(text)


SETTINGS = {"autoescape": True, "trim_blocks": True, "lstrip_blocks": True, "keep_trailing_newline": True}
"""The environment's options (besides its loader, undefined and filters); they name its template cache."""


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    """The shared Jinja environment.

    Compiled templates are kept in the cache folder (``cache.template_cache``): compiling
    them all takes about 0.15 s, loading them a few milliseconds.
    """
    env = Environment(loader=FileSystemLoader(str(templates_dir())), undefined=StrictUndefined,
                      bytecode_cache=template_cache(SETTINGS), **SETTINGS)
    env.filters.update(num=fmt_num, int=fmt_int, pct=fmt_pct, sortkey=sort_key, json_script=json_script, md=md_escape,
                       dots=break_at_dots, duration=fmt_duration, layer=layer_label)
    env.globals.update(long_table=LONG_TABLE)
    return env
