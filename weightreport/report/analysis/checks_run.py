"""Checks on the run itself: did training finish, and is every recorded part there.

They read the manifest and ``Run.problems``, not the tables, and run first (a gate
that passes a crashed run, or data that stops early, cannot be trusted).
"""

from __future__ import annotations

from weightreport.report.analysis.finding import Finding, Inputs, check, finding

MAX_PROBLEMS_LISTED = 5
RUN_CODES = ("run_failed", "run_incomplete", "data_missing")
"""The codes of findings on the run itself, which the report shows first in their severity."""


@check("run_failed", "run_incomplete", anchor="overview")
def check_run_status(data: Inputs) -> list[Finding]:
    """A run whose training raised (failed), or that never finished (running or interrupted)."""
    m = data.manifest
    status, step = m.get("status"), int(m.get("last_step", 0) or 0)
    error = str(m.get("error") or "")
    if status == "failed":
        return [finding("run_failed", "error", "", [step],
                        f"training failed at step {step}" + (f": {error}" if error else ""),
                        "Fix the error, then rerun; the report shows the run up to the failure.",
                        "overview", last_step=step)]
    if status == "running":
        return [finding("run_incomplete", "warning", "", [step],
                        f"the run is still marked running at step {step}: it may still be training, or "
                        "its process was killed before the collector could close",
                        "Wait for it to finish, or look for the job's end in its logs; a collector "
                        "used with `with` or close() marks the run complete.", "overview", last_step=step)]
    if status == "interrupted":
        return [finding("run_incomplete", "warning", "", [step],
                        f"the run was interrupted at step {step}" + (f" ({error})" if error else ""),
                        "Resume it (Collector(..., mode='resume')) or rerun it to get the whole run.",
                        "overview", last_step=step)]
    return []


@check("data_missing", anchor="overview")
def check_data_missing(data: Inputs) -> list[Finding]:
    """Parts that are missing or unreadable, snapshots that were dropped, a collector that stopped."""
    if not data.problems:
        return []
    shown = data.problems[:MAX_PROBLEMS_LISTED]
    more = len(data.problems) - len(shown)
    return [finding("data_missing", "warning", "", [int(data.manifest.get("last_step", 0) or 0)],
                    "the run's data is incomplete: " + "; ".join(shown) + (f"; and {more} more" if more else ""),
                    "The report and the findings cover what is there; restore the missing parts from a "
                    "copy, or rerun.", "overview", problems=len(data.problems))]
