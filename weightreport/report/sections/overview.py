"""The overview section: run identity, status, model structure, environment and health findings."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from weightreport.report.analysis.findings import Finding, find_all
from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.sections.base import Section, SectionType

KEY, TITLE = "overview", "Overview"
SOURCE_NAMES = {"tensorboard": "TensorBoard"}
"""How run.json's ``source`` kind is named in the report."""


@dataclass
class ModuleRow:
    """One row of the model structure table."""

    name: str
    type: str
    depth: int
    params: str
    num_params: int
    output_shape: str


@dataclass
class Overview(Section):
    """Run identity, status, model structure, environment and health findings."""

    name: str = ""
    status: str = "complete"
    error: str | None = None
    last_step: int = 0
    snapshots: int = 0
    model_class: str = ""
    total_params: int = 0
    trainable_params: int | None = 0
    modules: list[ModuleRow] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)
    """Run facts that are not curves (a trainer's runtime, throughput, FLOPs: run.json ``run_info``)."""
    overhead: dict[str, float] | None = None
    aliases: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    source: str | None = None


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


def _shape(shape) -> str:
    return "×".join(str(int(d)) for d in shape) if shape else ""


def overview(run, stats: pd.DataFrame, scalars: pd.DataFrame, findings: list | None = None) -> Overview:
    """Run identity, status, the structure table, environment and findings.

    ``findings`` are computed from ``stats`` and ``scalars`` with the default thresholds when None.
    """
    m = run.manifest
    model = m.get("model") or {}
    rows = []
    for mod in model.get("modules") or []:
        prefix = f"{mod.get('name')}." if mod.get("name") else ""
        params = ", ".join(f"{str(p.get('name')).removeprefix(prefix)} {_shape(p.get('shape'))}"
                           for p in mod.get("params") or [])
        out = mod.get("output_shape")
        rows.append(ModuleRow(name=mod.get("name") or "(root)", type=str(mod.get("type", "")),
                              depth=int(mod.get("depth", 0) or 0), params=params,
                              num_params=int(mod.get("num_params", 0) or 0),
                              output_shape=_shape(out) if out else "—"))
    settings = {str(k): "—" if v is None else str(v) for k, v in sorted((m.get("settings") or {}).items())}
    config = {k: _plain(v) for k, v in _flat(m.get("config") or {})}
    info = {str(k): _fact(v) for k, v in sorted((m.get("run_info") or {}).items())}
    source = m.get("source")
    source = source.get("kind") if isinstance(source, dict) else source
    env = {str(k): str(v) for k, v in sorted((m.get("environment") or {}).items())}
    return Overview(
        key=KEY, title=TITLE, name=run.name, status=str(m.get("status", "complete")),
        error=m.get("error"), last_step=int(m.get("last_step", 0) or 0),
        snapshots=int(m.get("snapshots", 0) or 0), model_class=str(model.get("class") or ""),
        total_params=int(model.get("total_params", 0) or 0),
        trainable_params=None if model.get("trainable_params") is None else int(model["trainable_params"]),
        modules=rows, environment=env, settings=settings, findings=find_all(stats, scalars) if findings is None else findings,
        config=config, info=info, overhead=m.get("overhead") or None, aliases=dict(m.get("aliases") or {}),
        problems=run.problems(), source=SOURCE_NAMES.get(str(source), str(source)) if source else None,
        caption="The run's identity, the model's modules in definition order, and problems found "
                "in the recorded statistics.")


def build(t: RunTables) -> Overview:
    """The overview of ``t``'s run, with its findings."""
    return overview(t.run, t.stats, t.scalars, t.findings)


SECTION = SectionType(KEY, TITLE, build)
