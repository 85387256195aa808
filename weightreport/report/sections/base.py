"""What every report section is: its data's base class and its registry entry.

A section's module (``sections/<key>.py``) defines a ``Section`` subclass for its data,
a builder from the run's tables (``RunTables``) and its chart functions, and ends with
``SECTION = SectionType(...)``; ``sections/__init__.py`` lists those entries in display
order, and its template is ``templates/sections/<key>.html``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from weightreport.report.analysis.run_tables import RunTables
    from weightreport.report.charts.common import Chart, Datasets


@dataclass
class Section:
    """One report section's data: its anchor, title, and a note when it has no data.

    Attributes:
        key: the anchor id (fixed ASCII, never user text).
        title: the heading.
        note: why the section is empty, or None when it has data.
        caption: a sentence on what the section shows and how its data was reduced.
    """

    key: str
    title: str
    note: str | None = None
    caption: str = ""

    @property
    def empty(self) -> bool:
        """True when the section has nothing to show."""
        return self.note is not None


@dataclass(frozen=True)
class SectionType:
    """A registered section: how to build its data and draw its charts.

    Attributes:
        key: the anchor id, the template's name (``templates/sections/<key>.html``) and
            the key of its data in ``ReportModel.by_key``.
        title: the heading.
        build: the run's tables → the section's data (a ``Section`` with this key and title).
        charts: the section's data and the page's datasets → its charts; None for a
            section drawn by its template alone (tables, text).
    """

    key: str
    title: str
    build: Callable[[RunTables], Section]
    charts: Callable[[Section, Datasets], list[Chart]] | None = None
