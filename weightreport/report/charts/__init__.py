"""Chart plumbing shared by every page (``specs``: plain data, no Altair; ``common``: its Altair
and DataFrame helpers) and chart builders shared by several sections (``figures``); each
report section's own chart functions live in its module under ``report/sections/``, and
``report.model.section_charts`` draws them all."""

from __future__ import annotations

from weightreport.report.charts.specs import Chart, dumps, select_layer

__all__ = ["Chart", "dumps", "select_layer"]
