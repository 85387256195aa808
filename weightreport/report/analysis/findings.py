"""Health findings: problems the report calls out at the top.

Each check is a pure function of ``Inputs`` (the run's tables and the thresholds)
returning ``Finding`` objects, declared with ``@check`` (``finding.check``) where it is
defined; ``find_all`` runs them in registration order (``checks.CHECKS``) and sorts the
result by severity, so the list is deterministic. ``run_findings`` reads only the
columns the checks need from a run directory.
"""

from __future__ import annotations

import pandas as pd

from weightreport.errors import WeightReportError
from weightreport.report.analysis.checks import CHECKS, CODES
from weightreport.report.analysis.finding import MAX_STEPS_LISTED, SEVERITIES, Finding, Inputs
from weightreport.report.analysis.sampling import late_steps, model_order, read_stats
from weightreport.report.analysis.thresholds import Thresholds
from weightreport.runfmt.schema import SCHEMAS

__all__ = ["CHECKS", "CODES", "FINDING_STATS_COLUMNS", "MAX_STEPS_LISTED", "SEVERITIES", "Finding",
           "at_or_above", "find_all", "gate", "run_findings"]

FINDING_STATS_COLUMNS = ["step", "tensor", "kind", "numel", "count", "nan_count", "inf_count", "mean",
                         "std", "min", "max", "norm", "outliers_6std", "outliers_iqr", "update_ratio",
                         "units", "dead_units", "saturated_units"]
"""The stats columns the checks read."""
FINDING_BN_COLUMNS = ["step", "module", "channel", "batch_mean", "batch_var", "running_mean",
                      "running_var", "weight"]
"""The batchnorm columns the checks read, at ``late_steps`` of the stats' snapshots only."""


def _empty(name: str, columns: list[str]) -> pd.DataFrame:
    return SCHEMAS[name].empty_table().select(columns).to_pandas()


def find_all(stats: pd.DataFrame, scalars: pd.DataFrame, batchnorm: pd.DataFrame | None = None,
             thresholds: Thresholds | None = None, order: list[str] | None = None,
             run=None) -> list[Finding]:
    """Run every check; findings sorted by severity, code, then the tensor's place in the model.

    Args:
        stats: the stats table (at least ``FINDING_STATS_COLUMNS``).
        scalars: the scalars table.
        batchnorm: the batchnorm table (none when None).
        thresholds: the thresholds (the defaults when None).
        order: tensor names in model order (default: sorted names).
        run: the ``Run`` the tables come from, for the checks on the run itself (its
            status, and what is missing from its directory); None to check the tables alone.
    """
    th = thresholds or Thresholds()
    data = Inputs(stats=stats, scalars=scalars,
                  batchnorm=batchnorm if batchnorm is not None else _empty("batchnorm", FINDING_BN_COLUMNS),
                  thresholds=th, order=order if order is not None else sorted(set(stats["tensor"])),
                  manifest=run.manifest if run is not None else {},
                  problems=run.problems() if run is not None else [])
    found = [f for check in CHECKS for f in check(data) if f.code not in th.ignore]
    place = {name: i for i, name in enumerate(data.order)}
    return sorted(found, key=lambda f: (SEVERITIES.index(f.severity), f.code, place.get(f.tensor, len(place)),
                                        f.tensor, f.steps))


def run_findings(run, thresholds: Thresholds | None = None) -> list[Finding]:
    """The findings of a ``Run``, reading only the columns the checks need."""
    stats = read_stats(run, columns=FINDING_STATS_COLUMNS)
    batchnorm = run.table("batchnorm", columns=FINDING_BN_COLUMNS, steps=late_steps(stats["step"]))
    return find_all(stats, run.table("scalars"), batchnorm,
                    thresholds, model_order(stats["tensor"], run.manifest), run)


def gate(findings: list[Finding], level: str, codes=()) -> list[Finding]:
    """The findings that fail a check: at ``level`` or worse, or with one of ``codes``.

    Raises:
        WeightReportError: a code is not a finding code.
    """
    unknown = sorted(set(codes) - set(CODES))
    if unknown:
        msg = f"unknown finding code {unknown[0]!r} for --fail-on-code; the codes are {', '.join(CODES)}"
        raise WeightReportError(msg)
    worse = at_or_above(findings, level)
    return [f for f in findings if f in worse or f.code in codes]


def at_or_above(findings: list[Finding], level: str) -> list[Finding]:
    """The findings whose severity is ``level`` or worse (``error`` > ``warning`` > ``info``)."""
    rank = SEVERITIES.index(level)
    return [f for f in findings if SEVERITIES.index(f.severity) <= rank]
