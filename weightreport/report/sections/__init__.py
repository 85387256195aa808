"""The report's sections, registered once, in display order.

Each entry is a ``SectionType`` (key, title, builder, chart function) defined by its
module ``sections/<key>.py``, next to the section's data class; its template is
``templates/sections/<key>.html``. ``analyze``, ``section_charts``, the HTML and PDF
pages and the Markdown summary all read ``SECTIONS``; nothing else lists section keys.
"""

from __future__ import annotations

from weightreport.report.sections import (
    activations,
    batchnorm,
    curves,
    distributions,
    dynamics,
    glance,
    heatmaps,
    outliers,
    overview,
    stats,
    structure,
    trajectories,
)
from weightreport.report.sections.base import Section, SectionType

__all__ = ["SECTIONS", "SECTION_KEYS", "Section", "SectionType"]

SECTIONS: tuple[SectionType, ...] = (
    overview.SECTION,
    glance.SECTION,
    curves.SECTION,
    distributions.SECTION,
    stats.SECTION,
    outliers.SECTION,
    heatmaps.SECTION,
    dynamics.SECTION,
    trajectories.SECTION,
    activations.SECTION,
    batchnorm.SECTION,
    structure.SECTION,
)
"""Every report section, in display order."""

SECTION_KEYS: tuple[str, ...] = tuple(s.key for s in SECTIONS)
"""The sections' keys (anchors), in display order."""
