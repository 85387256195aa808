"""The ``Finding`` record, what every check receives (``Inputs``), and the check registry.

A check is a pure function ``Inputs → [Finding]`` declared where it is defined with
``@check(code, ..., anchor=...)``: the codes it can emit and the report sections its
findings point to. Declaring registers it, in definition order, in ``REGISTERED``;
``checks.CHECKS`` and ``checks.CODES`` are read from there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from weightreport.report.analysis.sampling import qualified

if TYPE_CHECKING:
    from weightreport.report.analysis.thresholds import Thresholds

SEVERITIES = ("error", "warning", "info")
MAX_STEPS_LISTED = 5


@dataclass(frozen=True)
class Finding:
    """One health finding.

    Attributes:
        code: a stable identifier (``nan_inf``, ``outliers``, ``dead_units``, ...).
        severity: ``error``, ``warning`` or ``info``.
        tensor: the tensor or module concerned, or ``""`` for the whole run.
        steps: the first steps at which it was seen (at most ``MAX_STEPS_LISTED``).
        message: what was found, in one sentence.
        suggestion: what to try, in one sentence.
        step_range: the first and last step the finding covers.
        values: the numbers that show it (name → value).
        anchor: the report section whose chart shows it: a registered section key, one
            its check declared.
        measure: the key of ``values`` that says how bad it is, which ranks the findings of one
            code (the worst first, where the report groups them); ``""`` when none does.
        worse: ``"higher"`` when a larger ``measure`` is worse, ``"lower"`` when a smaller one is.
    """

    code: str
    severity: str
    tensor: str
    steps: tuple[int, ...]
    message: str
    suggestion: str
    step_range: tuple[int, int] = (0, 0)
    values: dict[str, float] = field(default_factory=dict, hash=False)
    anchor: str = "overview"
    measure: str = ""
    worse: str = "higher"

    @property
    def worst(self) -> float | None:
        """The ``measure``'s value, or None when the finding has none (or it is not finite)."""
        v = self.values.get(self.measure) if self.measure else None
        return v if v is not None and math.isfinite(v) else None

    @property
    def badness(self) -> float:
        """How bad the finding is on its measure's scale, larger worse (−∞ without a measure)."""
        v = self.worst
        if v is None:
            return -math.inf
        return v if self.worse == "higher" else -v


@dataclass
class Inputs:
    """What the checks read: the run's tables (only the columns they need) and thresholds.

    Attributes:
        stats: the stats table (``FINDING_STATS_COLUMNS``).
        scalars: the scalars table.
        batchnorm: the batchnorm table (may be empty).
        thresholds: the thresholds.
        order: tensor names in model order (first layer first).
        manifest: the run's run.json (empty when the checks run on tables alone).
        problems: what is missing or unreadable in the run directory (``Run.problems``).
    """

    stats: pd.DataFrame
    scalars: pd.DataFrame
    batchnorm: pd.DataFrame
    thresholds: Thresholds
    order: list[str]
    manifest: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def frozen(self) -> set[str]:
        """Parameters the manifest marks not trainable (``requires_grad=False``)."""
        modules = (self.manifest.get("model") or {}).get("modules") or []
        return {str(p.get("name")) for m in modules for p in m.get("params") or []
                if p.get("trainable") is False}

    @property
    def gammas(self) -> set[str]:
        """The ``weight`` of every normalisation layer (a module type named ``…Norm…``: BatchNorm,
        LayerNorm, GroupNorm, RMSNorm, timm's ``BatchNormAct2d``), by qualified name."""
        modules = (self.manifest.get("model") or {}).get("modules") or []
        return {qualified(m.get("name", ""), str(p.get("name"))) for m in modules if "Norm" in str(m.get("type"))
                for p in m.get("params") or [] if str(p.get("name")).rsplit(".", 1)[-1] == "weight"}


NEAR_ZERO_RMS = 1e-3
"""Below this root-mean-square a weight has no meaningful scale of its own (a bias started at
zero, ViT's N(0, 1e-6) biases): relative updates and norm growth are measured only from
the first snapshot at or above it."""


EARLY_SCALE_QUANTILE = 0.9
"""The scale of a model's early gradients or weights: nine tensors in ten start with a per-element
RMS at or below it."""


def rms(g: pd.DataFrame) -> np.ndarray:
    """One tensor's rows' per-element root-mean-square: the norm over √numel."""
    return g["norm"].to_numpy(dtype=float) / np.sqrt(np.maximum(g["numel"].to_numpy(dtype=float), 1.0))


def first_rms(stats: pd.DataFrame) -> pd.Series:
    """Each parameter's per-element RMS at its first snapshot with a finite norm, by tensor name.
    Below ``NEAR_ZERO_RMS`` the parameter was born at zero."""
    p = stats[(stats["kind"] == "param") & np.isfinite(stats["norm"])].sort_values("step", kind="stable")
    first = p.drop_duplicates("tensor")
    return pd.Series(rms(first), index=first["tensor"].to_numpy())


def scaled(g: pd.DataFrame) -> pd.Series:
    """For one tensor's rows in step order: True from its first snapshot with RMS ≥ ``NEAR_ZERO_RMS``."""
    return pd.Series(np.maximum.accumulate(rms(g) >= NEAR_ZERO_RMS), index=g.index)


LOSS, VAL_LOSS = "loss", "val_loss"


def series(scalars: pd.DataFrame, name: str) -> pd.DataFrame:
    """``step, value`` of scalar ``name``, finite values only, sorted by step."""
    s = scalars[scalars["name"] == name][["step", "value"]]
    s = s[np.isfinite(s["value"].to_numpy(dtype=float))]
    return s.sort_values("step", kind="stable").reset_index(drop=True)


def listed_steps(values: Iterable) -> tuple[int, ...]:
    """The first ``MAX_STEPS_LISTED`` distinct steps, sorted."""
    return tuple(int(s) for s in sorted(set(values))[:MAX_STEPS_LISTED])


def finding(code: str, severity: str, tensor: str, steps: Iterable, message: str, suggestion: str,
            anchor: str, *, measure: str = "", worse: str = "higher", **values: float) -> Finding:
    """A ``Finding`` whose listed steps and step range come from ``steps``.

    ``measure`` names the one of ``values`` that ranks it (``worse``: ``"higher"`` or
    ``"lower"`` is worse); it must be one of ``values``.
    """
    if measure and measure not in values:
        msg = f"{code}: measure {measure!r} is not one of its values ({', '.join(sorted(values))})"
        raise ValueError(msg)
    all_steps = sorted({int(s) for s in steps})
    rng = (all_steps[0], all_steps[-1]) if all_steps else (0, 0)
    clean = {k: (float(v) if v is not None else float("nan")) for k, v in sorted(values.items())}
    return Finding(code, severity, tensor, listed_steps(all_steps), message, suggestion,
                   step_range=rng, values=clean, anchor=anchor, measure=measure, worse=worse)


def at_last(df: pd.DataFrame, by: str | list[str] = "tensor") -> pd.DataFrame:
    """The rows of ``df`` at each group's last step."""
    return df[df["step"] == df.groupby(by)["step"].transform("max")]


@dataclass(frozen=True)
class Check:
    """A registered check: its function and what it declared it can emit.

    Attributes:
        fn: the check, ``Inputs → [Finding]``.
        codes: the finding codes it can emit, in declaration order.
        anchors: the section keys its findings can point to.
    """

    fn: Callable[[Inputs], list[Finding]]
    codes: tuple[str, ...]
    anchors: tuple[str, ...]

    @property
    def name(self) -> str:
        """The check function's name."""
        return self.fn.__name__

    def __call__(self, data: Inputs) -> list[Finding]:
        """Run the check; raise when it emits a code or an anchor it did not declare.

        Raises:
            ValueError: a finding outside the declaration (a bug in the check).
        """
        found = self.fn(data)
        for f in found:
            if f.code not in self.codes or f.anchor not in self.anchors:
                msg = (f"{self.name} emitted code {f.code!r} with anchor {f.anchor!r}; it declares "
                       f"codes {', '.join(self.codes)} and anchors {', '.join(self.anchors)}")
                raise ValueError(msg)
        return found


REGISTERED: list[Check] = []
"""Every declared check, in definition (and import) order."""


def check(*codes: str, anchor: str | tuple[str, ...]) -> Callable:
    """Declare and register a check: the codes it can emit and the section(s) they point to.

    Args:
        codes: the finding codes the check can emit.
        anchor: the section key, or keys, its findings' ``anchor`` can be.

    Returns:
        A decorator that registers the function and returns it unchanged.
    """
    anchors = (anchor,) if isinstance(anchor, str) else tuple(anchor)

    def register(fn: Callable[[Inputs], list[Finding]]) -> Callable[[Inputs], list[Finding]]:
        REGISTERED.append(Check(fn, tuple(codes), anchors))
        return fn

    return register
