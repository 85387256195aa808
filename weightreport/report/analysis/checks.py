"""Every check, in the order they run, and every finding code, derived from their declarations.

Importing the check modules registers their ``@check`` functions (``finding.REGISTERED``)
in definition order: ``checks_run``, ``checks_tensors``, then ``checks_training``. This module does not import the
thresholds, so ``thresholds`` can check ``ignore`` against ``CODES``.
"""

from __future__ import annotations

from weightreport.report.analysis import checks_run, checks_tensors, checks_training
from weightreport.report.analysis.finding import REGISTERED, Check

__all__ = ["ANCHORS", "CHECKS", "CODES", "Check"]

_MODULES = (checks_run, checks_tensors, checks_training)  # imported for their registrations, in this order

CHECKS: tuple[Check, ...] = tuple(REGISTERED)
"""Every registered check, in the order ``find_all`` runs them."""

CODES: tuple[str, ...] = tuple(dict.fromkeys(code for c in CHECKS for code in c.codes))
"""Every finding code, in the order the checks declare them."""

ANCHORS: tuple[str, ...] = tuple(dict.fromkeys(a for c in CHECKS for a in c.anchors))
"""Every section key a finding can point to, in the order the checks declare them."""
