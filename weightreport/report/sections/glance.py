"""The network at a glance: every layer at once, as layer × step heatmaps and a depth profile.

Five per-layer signals (``analysis.layer_grid``): update ratio, gradient norm, weight
norm relative to its initial value, module output std, and the dead or saturated
fraction. Each present signal gets a heatmap over a bounded grid of step columns; a
signal the run did not record becomes one sentence. The depth profile shows every
signal at each layer's last snapshot, on one layer axis in model order. Clicking a
layer in any of these charts selects it in every section (``templates/js/glance.js``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from weightreport.report.analysis import layer_grid as lg
from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.analysis.sampling import MAX_LAYER_POINTS, model_order
from weightreport.report.charts.common import HEATMAP_DIGITS, Chart, Datasets, make, nums
from weightreport.report.charts.layer_grid import (
    BAD,
    ZERO,
    gutter,
    heatmap_chart,
    max_groups,
    profile_chart,
)
from weightreport.report.sections.base import Section, SectionType
from weightreport.runfmt.calls import split_call

KEY, TITLE = "glance", "The network at a glance"


@dataclass(frozen=True)
class SignalType:
    """A per-layer signal: where it comes from and how it is drawn.

    Attributes:
        key: a short id.
        title: the chart's caption.
        short: the depth profile panel's title.
        legend: the colour legend's title.
        scale: ``log``, ``ratio`` (log, diverging at 1) or ``fraction`` (linear 0–1).
        source: ``param``, ``grad`` or ``output`` (which stats rows it reads).
        compute: stats rows → the signal frame (``tensor, step, value, bad``).
        absent: the sentence shown when the run has no data for it.
    """

    key: str
    title: str
    short: str
    legend: str
    scale: str
    source: str
    compute: Callable[[pd.DataFrame], pd.DataFrame]
    absent: str


SIGNALS: tuple[SignalType, ...] = (
    SignalType("update_ratio", "Update ratio ‖w_t − w_prev‖ / ‖w_prev‖ between snapshots (log)",
               "update ratio", "‖Δw‖/‖w‖", "log", "param", lg.update_ratio,
               "Update ratio: not drawn; it needs two snapshots of a parameter, and this run has fewer."),
    SignalType("grad_norm", "Gradient L2 norm (log)", "gradient norm", "‖g‖", "log", "grad", lg.grad_norm,
               "Gradient norm: not drawn; this run recorded no gradients (gradients=False, or no "
               "backward pass at a snapshot step)."),
    SignalType("weight_norm", "Weight norm relative to its initial value, ‖w_t‖ / ‖w₀‖ (log, centred on 1)",
               "‖w‖ / ‖w₀‖", "‖w‖/‖w₀‖", "ratio", "param", lg.weight_norm,
               "Weight norm: not drawn; this run recorded no parameter snapshot."),
    SignalType("output_std", "Module output standard deviation (log)", "output std", "std", "log", "output",
               lg.output_std,
               "Module output std: not drawn; this run recorded no activations (activations=False, or "
               "no forward pass in training mode at a snapshot step)."),
    SignalType("dead", "Dead or saturated units, fraction of the module's units", "dead or saturated",
               "fraction", "fraction", "output", lg.dead_fraction,
               "Dead or saturated units: not drawn; no module with a ReLU-like or saturating output "
               "(tanh, sigmoid) was recorded."),
)
"""The signals, in display order."""


@dataclass
class Signal:
    """One present signal: its rows in model order, its grid cells and its last values.

    Attributes:
        type: what the signal is.
        rows: the layers (parameter or module names) in model order.
        cells: ``tensor, bin, value, bad`` (``layer_grid.grid``).
        last: ``tensor, step, value, bad`` at each layer's last snapshot.
        groups: the rows' module groups.
    """

    type: SignalType
    rows: list[str]
    cells: pd.DataFrame
    last: pd.DataFrame
    groups: list[lg.Group]


@dataclass
class Glance(Section):
    """Every present signal, the step grid and its column labels, the sentences for absent ones,
    and the depth profile's axis (every row of any signal, in model order) and its groups."""

    signals: list[Signal] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    bins: lg.StepBins = field(default_factory=lambda: lg.StepBins(0, 0, 1))
    profile_rows: list[str] = field(default_factory=list)
    profile_groups: list[lg.Group] = field(default_factory=list)
    columns: list[dict] = field(default_factory=list)


def glance(run, params: pd.DataFrame, grads: pd.DataFrame, outputs: pd.DataFrame) -> Glance:
    """The whole-network view of the stats rows of parameters, gradients and module outputs."""
    sources = {"param": params, "grad": grads, "output": outputs}
    frames = {s.key: s.compute(sources[s.source]) for s in SIGNALS}
    present = [s for s in SIGNALS if not frames[s.key].empty]
    absent = [s.absent for s in SIGNALS if frames[s.key].empty]
    if not present:
        return Glance(key=KEY, title=TITLE, absent=absent,
                      note="No per-layer signal was recorded: no parameters, gradients or activations.")
    names = {str(n) for n in params["tensor"]} | {str(n) for n in grads["tensor"]}
    orders = {s.key: model_order(frames[s.key]["tensor"], run.manifest) for s in present}
    steps = np.concatenate([frames[s.key]["step"].to_numpy(np.int64) for s in present])
    bins = lg.step_bins(steps, rows=max(len(o) for o in orders.values()))
    signals = [Signal(s, orders[s.key], lg.grid(frames[s.key], bins), lg.last_snapshot(frames[s.key]),
                      lg.module_groups(orders[s.key], names, max_groups(len(orders[s.key])))) for s in present]
    axis = model_order({n for o in orders.values() for n in o}, run.manifest)
    single = bool((np.bincount(bins.of(np.unique(steps)), minlength=bins.count) == 1).all())
    per = "one snapshot per column" if single else f"about {bins.span / bins.count:.4g} steps per column"
    return Glance(
        key=KEY, title=TITLE, signals=signals, absent=absent, bins=bins, profile_rows=axis,
        columns=column_labels(bins, steps),
        profile_groups=lg.module_groups(axis, names, max_groups(len(axis))),
        caption=f"One row per parameter (update ratio, gradient and weight norms) or module (outputs), "
                f"in model order, grouped by parent module; {bins.count} columns of equal step ranges "
                f"({per}). A cell holds the value at the last sampled snapshot in its range (the report "
                f"samples at most {MAX_LAYER_POINTS}); magenta marks a range in which the tensor held NaN "
                f"or Inf, grey an exact zero on a log scale; blank cells were not measured (a weight born "
                f"near zero, such as a bias, counts from its first snapshot with RMS ≥ 1e-3). Click a "
                f"layer to select it in every section.")


def column_labels(bins: lg.StepBins, steps: np.ndarray) -> list[dict]:
    """Per column ``b``: ``steps``, its one snapshot's step, or the range of steps it covers."""
    uniq = np.unique(steps)
    per = np.bincount(bins.of(uniq), minlength=bins.count)
    out = []
    for b in range(bins.count):
        one = uniq[bins.of(uniq) == b] if per[b] == 1 else None
        label = str(int(one[0])) if one is not None else f"{bins.start(b)}–{bins.end(b)}"
        out.append({"b": b, "steps": label})
    return out


def build(t: RunTables) -> Glance:
    """The whole-network view of ``t``'s run."""
    return glance(t.run, t.params, t.kind("grad"), t.kind("activation", "bn_output"))


def _groups(groups: list[lg.Group]) -> list[dict]:
    return [{"group": g.label, "start": g.start, "end": g.end, "shade": i % 2} for i, g in enumerate(groups)]


def _label(name: str, group: str) -> str:
    """A row's name after its group's path; a reused module's later call reads ``relu (call 2)``."""
    module, call = split_call(name)
    if call == 1:
        module = name
    suffix = f"(call {call})" if call > 1 else ""
    if module == group:
        return suffix
    short = module[len(group) + 1:] if module.startswith(group + ".") else module
    return f"{short} {suffix}".rstrip()


def _heatmap_records(sig: Signal, count: int) -> list[dict]:
    """Per row: its name, index, one rounded value (or null) per column, and its NaN/Inf columns."""
    index = {n: i for i, n in enumerate(sig.rows)}
    values = np.full((len(sig.rows), count), np.nan)
    c = sig.cells
    r, b = c["tensor"].map(index).to_numpy(np.int64), c["bin"].to_numpy(np.int64)
    values[r, b] = c["value"].to_numpy(dtype=float)
    bad: list[list[int]] = [[] for _ in sig.rows]
    for ri, bi in zip(r[c["bad"].to_numpy(bool)], b[c["bad"].to_numpy(bool)], strict=True):
        bad[ri].append(int(bi))
    group = {n: g.label for g in sig.groups for n in sig.rows[g.start:g.end]}
    return [{"tensor": n, "row": i, "v": nums(values[i], HEATMAP_DIGITS), "bad": sorted(bad[i]),
             "label": _label(n, group[n])} for i, n in enumerate(sig.rows)]


def _states(values: pd.Series, bad: pd.Series, scale: str) -> pd.Series:
    zero = (values <= 0) if scale != "fraction" else pd.Series(False, index=values.index)
    return pd.Series(np.where(bad, BAD, np.where(zero, ZERO, "v")), index=values.index)


def _present(states: list[pd.Series]) -> list[str]:
    seen = set(pd.concat(states).unique()) if states else set()
    return [s for s in (ZERO, BAD) if s in seen]


def glance_charts(section: Glance, ds: Datasets) -> list[Chart]:
    """One heatmap per present signal, then the depth profile; all ``glance`` charts."""
    charts, bins, panel_states, panels = [], section.bins, [], []
    width = max(gutter(len(sig.rows))[0] for sig in section.signals)
    axis = {n: i for i, n in enumerate(section.profile_rows)}
    for sig in section.signals:
        st = sig.type
        c = sig.cells[sig.cells["value"].notna() | sig.cells["bad"]]
        states = _states(c["value"], c["bad"], st.scale)
        charts.append(make(st.title, heatmap_chart(
            ds, _heatmap_records(sig, bins.count), _groups(sig.groups), rows=len(sig.rows), scale=st.scale,
            legend=st.legend, first=bins.first, span=bins.span, columns=section.columns, present=_present([states]),
            values=nums(c["value"][states == "v"], HEATMAP_DIGITS), width=width), ds, wide=True, glance=True))
        last = sig.last
        lstates = _states(last["value"], last["bad"], st.scale)
        panel_states.append(lstates)
        panels.append({"title": st.short, "scale": st.scale, "records": [
            {"tensor": t, "row": axis[t], "step": int(s), "value": v, "state": state}
            for t, s, v, state in zip(last["tensor"], last["step"], nums(last["value"], HEATMAP_DIGITS),
                                      lstates, strict=True)]})
    charts.append(make("Depth profile at each layer's last snapshot", profile_chart(
        ds, panels, _groups(section.profile_groups), section.profile_rows, _present(panel_states)),
        ds, wide=True, glance=True))
    return charts


SECTION = SectionType(KEY, TITLE, build, glance_charts)
