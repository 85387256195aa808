"""Summaries → GitHub-flavoured Markdown, through the shared Jinja env.

Markdown templates live in ``templates/md/``. The environment's autoescape still
applies (HTML in user strings becomes entities, which Markdown shows as text), and
templates pass every user string through the ``md`` filter, which also escapes
Markdown's own syntax (pipes, backticks, emphasis, links).
"""

from __future__ import annotations

from weightreport.report.render.env import environment

MAX_FINDINGS = 12
MAX_LAYERS = 10
MAX_SCALARS = 6
LAYER_STATS = ("norm", "std", "mean")
STATUS_ICONS = {"error": "❌", "warning": "⚠️", "info": "ℹ️", "ok": "✅"}


def render_summary_md(summary) -> str:
    """A pull-request comment (at most about 60 lines) for a ``Summary``."""
    return environment().get_template("md/summary.md").render(
        s=summary, o=summary.overview, icons=STATUS_ICONS, max_findings=MAX_FINDINGS,
        max_layers=MAX_LAYERS, max_scalars=MAX_SCALARS, layer_stats=LAYER_STATS)
