"""Findings grouped by code and severity: one entry per kind of problem, however many layers have it.

A ResNet-50 can have a hundred layers with dead units; the report and the Markdown
summary show that as one group ("110 layers have dead units; worst: ...") with its
worst few layers named by their own measure (``Finding.measure``), and the rest listed
on demand. Groups are ordered by severity, the run's own findings (failed, incomplete, data
missing) first within theirs, then by how many layers they cover.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from weightreport.report.analysis.checks_run import RUN_CODES
from weightreport.report.analysis.finding import SEVERITIES, Finding
from weightreport.runfmt.calls import call_label

GROUP_TOP = 3
"""How many of a group's worst layers its message names."""

PHRASES: dict[tuple[str, str] | str, str] = {
    "nan_inf": "{n} tensors or scalars hold NaN or Inf values",
    "exploding_gradients": "{n} tensors have exploding gradients",
    "vanishing_gradients": "{n} tensors have vanishing gradients",
    ("update_ratio", "warning"): "{n} tensors have a median update-to-weight ratio too high (about 1e-3 "
                                 "per step is typical)",
    ("update_ratio", "info"): "{n} tensors have a median update-to-weight ratio too low (about 1e-3 "
                              "per step is typical)",
    "outliers": "{n} weights have values beyond 6σ or many beyond the IQR fences",
    "dead_units": "{n} layers have dead units",
    "saturated_units": "{n} layers have saturated units",
    "bn_drift": "{n} BatchNorm layers' running statistics differ from their batch statistics",
    "bn_gamma_collapse": "{n} BatchNorm layers have channels whose γ collapsed towards zero",
    "weight_norm_growth": "{n} weights' norms grew many-fold and were still growing",
}
"""A group's lead sentence, by (code, severity) or by code, for ``n`` (two or more) layers."""


def _times(v: float) -> str:
    """``3.2×``; a growth to exactly 0 (a gradient gone, behind dead units) says so, not ``0×``."""
    return f"{v:.3g}×" if v != 0 else "to exactly 0"


MEASURE_TEXT: dict[str, Callable[[float], str]] = {
    "fraction": lambda v: f"{v:.0%}",
    "growth": _times,
    "ratio": _times,
    "median_ratio": lambda v: f"{v:.2g}/step",
    "max_abs_z": lambda v: f"|z| {v:.1f}",
    "mean_shift": lambda v: f"{v:.3g} σ",
    "nonfinite": lambda v: f"{int(v)} NaN/Inf",
    "steps_bad": lambda v: f"{int(v)} steps",
}
"""How each measure a check names is written beside its layer (any other: 4 significant digits)."""


def measure_text(f: Finding) -> str:
    """A finding's measure as a reader writes it (``25%``, ``3.2×``), ``""`` when it has none."""
    v = f.worst
    if v is None:
        return ""
    return MEASURE_TEXT.get(f.measure, lambda x: f"{x:.4g}")(v)


@dataclass(frozen=True)
class Named:
    """One layer of a group: its name, its measure and that measure as text.

    Attributes:
        tensor: the tensor or module.
        value: its finding's measure (None when the finding has none).
        text: the measure as text (``""`` when none).
    """

    tensor: str
    value: float | None
    text: str


@dataclass(frozen=True)
class FindingGroup:
    """The findings of one code and severity, worst first.

    Attributes:
        code: the findings' code.
        severity: their severity.
        findings: every finding of the group, worst first (by its measure), then in
            ``find_all``'s order.
    """

    code: str
    severity: str
    findings: tuple[Finding, ...]

    @cached_property
    def layers(self) -> list[Named]:
        """Each tensor the group covers once (at its worst finding), worst first; none for run findings."""
        seen, out = set(), []
        for f in self.findings:
            if f.tensor and f.tensor not in seen:
                seen.add(f.tensor)
                out.append(Named(f.tensor, f.worst, measure_text(f)))
        return out

    @property
    def count(self) -> int:
        """How many tensors the group covers (0 for a finding on the whole run)."""
        return len(self.layers)

    @property
    def worst(self) -> list[Named]:
        """The ``GROUP_TOP`` worst tensors."""
        return self.layers[:GROUP_TOP]

    @property
    def rest(self) -> list[Named]:
        """The tensors after the worst few."""
        return self.layers[GROUP_TOP:]

    @property
    def first(self) -> Finding:
        """The worst finding."""
        return self.findings[0]

    @property
    def anchor(self) -> str:
        """The section whose chart shows the worst finding."""
        return self.first.anchor

    @property
    def layer(self) -> str:
        """The worst tensor (``""`` for a finding on the whole run)."""
        return self.first.tensor

    @property
    def single(self) -> bool:
        """True when the group covers one tensor (or the whole run): shown by its worst finding's message."""
        return self.count <= 1

    @property
    def size(self) -> int:
        """The number of tensors it covers, or 1 for a finding on the whole run (what groups are ordered by)."""
        return max(self.count, 1)

    @property
    def lead(self) -> str:
        """The group's sentence without the names: the worst finding's own message when it covers one tensor."""
        if self.single:
            more = len(self.findings) - 1
            return self.first.message + (f" (and {more} more {self.code} finding{'s' * (more > 1)})" if more else "")
        phrase = PHRASES.get((self.code, self.severity)) or PHRASES.get(self.code)
        return phrase.format(n=self.count) if phrase else f"{self.count} tensors have {self.code} findings"

    @property
    def message(self) -> str:
        """The group in one plain sentence: the lead and its worst tensors with their measures."""
        if self.single:
            return self.lead
        names = ", ".join(f"{call_label(w.tensor)} ({w.text})" if w.text else call_label(w.tensor) for w in self.worst)
        more = f", and {len(self.rest)} more" if self.rest else ""
        return f"{self.lead}; worst: {names}{more}"

    @property
    def suggestions(self) -> list[str]:
        """The distinct suggestions of the group's findings, the worst's first."""
        return list(dict.fromkeys(f.suggestion for f in self.findings))

    @property
    def step_range(self) -> tuple[int, int]:
        """The first and last step any of the group's findings covers."""
        return (min(f.step_range[0] for f in self.findings), max(f.step_range[1] for f in self.findings))

    def to_dict(self) -> dict:
        """The group as JSON-ready data (its findings are listed whole elsewhere)."""
        return {"code": self.code, "severity": self.severity, "count": self.count,
                "findings": len(self.findings), "message": self.message, "anchor": self.anchor,
                "worst": [{"tensor": w.tensor, "value": w.value} for w in self.worst],
                "step_range": list(self.step_range)}


def group_findings(findings: list[Finding]) -> list[FindingGroup]:
    """``findings`` as one group per (code, severity): by severity, the run's own findings first, then most
    tensors first, then by code."""
    by_key: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        by_key.setdefault((f.code, f.severity), []).append(f)
    groups = [FindingGroup(code, sev, tuple(sorted(fs, key=lambda f: -f.badness)))
              for (code, sev), fs in by_key.items()]
    return sorted(groups, key=lambda g: (SEVERITIES.index(g.severity), g.code not in RUN_CODES, -g.size, g.code))
