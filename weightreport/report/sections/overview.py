"""The overview section: the run in brief (status, steps, time, metrics, size) and its findings, grouped.

It is the report's first screen, so it stays short whatever the model's size: the
findings are grouped by code and severity (``analysis.finding_groups``), and the model's
structure has its own section at the end (``sections/structure.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from weightreport.report.analysis.finding_groups import FindingGroup, group_findings
from weightreport.report.analysis.findings import Finding, find_all
from weightreport.report.analysis.metrics import ScalarRow, key_scalars
from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.sections.base import Section, SectionType

KEY, TITLE = "overview", "Overview"


@dataclass
class Overview(Section):
    """The run in brief and its health findings.

    Attributes:
        tensors: the number of parameter tensors recorded.
        wall_s: training plus collector time in seconds (None when the run did not record it).
        metrics: every logged scalar's first, final, best and range.
        findings: every finding, in ``find_all``'s order.
        groups: the findings grouped by code and severity, as the page shows them.
    """

    name: str = ""
    status: str = "complete"
    error: str | None = None
    last_step: int = 0
    snapshots: int = 0
    model_class: str = ""
    total_params: int = 0
    trainable_params: int | None = 0
    tensors: int = 0
    wall_s: float | None = None
    metrics: list[ScalarRow] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    groups: list[FindingGroup] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)
    """Run facts that are not curves (a trainer's runtime, throughput, FLOPs: run.json ``run_info``)."""
    overhead: dict[str, float] | None = None
    aliases: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _flat(config: dict, prefix: str = "") -> list[tuple[str, object]]:
    """A nested config as ``(dotted key, value)`` pairs, sorted by key."""
    out = []
    for key, value in sorted(config.items(), key=lambda kv: str(kv[0])):
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.extend(_flat(value, name + "."))
        else:
            out.append((name, value))
    return out


def _plain(value) -> str:
    """A config value as the reader would write it (``—`` for none)."""
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value) or "[]"
    return str(value)


def _fact(value) -> str:
    """A run-info value as text: numbers to 4 significant digits (``—`` for none)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return _plain(value)


def _wall(overhead: dict | None) -> float | None:
    """Training plus collector seconds from run.json's ``overhead``, None when absent."""
    try:
        return float(overhead["training_s"]) + float(overhead["collector_s"])
    except (TypeError, KeyError, ValueError):
        return None


def _overhead(overhead: dict | None) -> dict[str, float] | None:
    """run.json's ``overhead`` with ``compile_s`` (0 for a run from before it was recorded) and
    ``without_compile``: the collector's share of the run without that time (None where nothing
    was compiled)."""
    if not overhead:
        return None
    out = dict(overhead)
    try:
        compiled = float(out.get("compile_s") or 0.0)
        rest = float(out["collector_s"]) - compiled
        total = rest + float(out["training_s"])
    except (TypeError, KeyError, ValueError):
        return out
    out["compile_s"] = compiled
    out["without_compile"] = max(rest, 0.0) / total if compiled > 0 and total > 0 else None
    return out


def overview(run, stats: pd.DataFrame, scalars: pd.DataFrame, findings: list | None = None) -> Overview:
    """The run in brief (status, steps, time, metrics, size), its settings, and its findings grouped.

    ``findings`` are computed from ``stats`` and ``scalars`` with the default thresholds when None.
    """
    m = run.manifest
    model = m.get("model") or {}
    settings = {str(k): "—" if v is None else str(v) for k, v in sorted((m.get("settings") or {}).items())}
    config = {k: _plain(v) for k, v in _flat(m.get("config") or {})}
    info = {str(k): _fact(v) for k, v in sorted((m.get("run_info") or {}).items())}
    env = {str(k): str(v) for k, v in sorted((m.get("environment") or {}).items())}
    findings = find_all(stats, scalars) if findings is None else findings
    params = stats[stats["kind"] == "param"] if "kind" in stats else stats.iloc[:0]
    return Overview(
        key=KEY, title=TITLE, name=run.name, status=str(m.get("status", "complete")),
        error=m.get("error"), last_step=int(m.get("last_step", 0) or 0),
        snapshots=int(m.get("snapshots", 0) or 0), model_class=str(model.get("class") or ""),
        total_params=int(model.get("total_params", 0) or 0),
        trainable_params=None if model.get("trainable_params") is None else int(model["trainable_params"]),
        tensors=int(params["tensor"].nunique()) if len(params) else 0, wall_s=_wall(m.get("overhead")),
        metrics=key_scalars(scalars) if len(scalars) else [],
        environment=env, settings=settings, findings=findings, groups=group_findings(findings),
        config=config, info=info, overhead=_overhead(m.get("overhead")), aliases=dict(m.get("aliases") or {}),
        problems=run.problems(),
        caption="The run in brief, and the problems found in its recorded statistics, one row per "
                "kind of problem; the model's structure is the last section.")


def build(t: RunTables) -> Overview:
    """The overview of ``t``'s run, with its findings."""
    return overview(t.run, t.stats, t.scalars, t.findings)


SECTION = SectionType(KEY, TITLE, build)
