"""The activations section: output percentile bands, dead and saturated units, probe captures."""

from __future__ import annotations

from dataclasses import dataclass, field

import altair as alt
import pandas as pd

from weightreport.report.analysis.frames import PCTS
from weightreport.report.analysis.probe_picks import MAX_PROBE_MODULES, pick_probes
from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.analysis.sampling import MAX_LAYER_POINTS, model_order, pick_steps
from weightreport.report.charts.axes import step_x
from weightreport.report.charts.common import (
    HALF,
    HEATMAP_DIGITS,
    HEIGHT,
    Chart,
    Datasets,
    columnar,
    make,
    nums,
)
from weightreport.report.charts.figures import bands_chart, matrix_transforms
from weightreport.report.charts.names import CHAR_PX, short_labels, wrap_name
from weightreport.report.sections.base import Section, SectionType
from weightreport.runfmt.calls import call_label, split_call

KEY, TITLE = "activations", "Activations"
MAX_PROBES_PER_MODULE = 4
MAX_UNIT_LAYERS = 8
REUSED = (" A module that runs more than once per forward (a ResNet block's ReLU) has one layer per call, "
          "in call order: \"(call 2)\" is its second.")
"""Added to the caption when a run has such calls."""
PROBE_PX = 140
"""A probe panel's side: four panels, their colour legends and gaps fit the 936 pixels of a
wide figure at a 1280-pixel window."""


@dataclass
class Activations(Section):
    """Activation percentile bands, dead/saturated fractions, and probe matrices.

    Attributes:
        bands: ``tensor, step, p1 ... p99`` downsampled.
        units: ``tensor, step, dead, saturated`` (fractions of units).
        probes: ``module, kind, index, step, rows, cols, values`` at the last snapshot.
    """

    bands: pd.DataFrame = field(default_factory=pd.DataFrame)
    units: pd.DataFrame = field(default_factory=pd.DataFrame)
    probes: pd.DataFrame = field(default_factory=pd.DataFrame)
    layers: list[str] = field(default_factory=list)
    no_units: str = ""
    """Why the dead/saturated chart is left out (no unit ever was), or ``""`` when it is drawn."""
    probe_notes: list[str] = field(default_factory=list)
    """What the probe captures leave out: attention the collector could not capture
    (run.json's ``probe_note``) and the modules not drawn (``pick_probes``)."""


def _why_none(manifest: dict) -> str:
    """Why a run has no activations and no probe maps, from what its run.json says."""
    settings = manifest.get("settings") or {}
    if manifest.get("activation_note"):
        why = manifest["activation_note"]
    elif settings.get("activations") is False:
        why = "no activations were recorded: the collector ran with activations=False"
    elif "activations" in settings:
        why = "no activations were recorded: no forward pass in training mode reached a snapshot step"
    else:
        why = "this run records no activations"
    if settings.get("probe_shape") is None:
        probe = "; no probe batch was given"
    elif manifest.get("probe_note"):
        probe = f"; the probe gave no maps ({manifest['probe_note']})"
    else:
        probe = "; the probe gave no maps"
    return why[0].upper() + why[1:] + probe + "."


def activations(run, acts: pd.DataFrame, probes: pd.DataFrame) -> Activations:
    """Percentile bands of activations, dead/saturated unit fractions, probe heatmaps."""
    if acts.empty and probes.empty:
        return Activations(key=KEY, title=TITLE, note=_why_none(run.manifest))
    bands = acts[acts["step"].isin(pick_steps(acts["step"]))] if not acts.empty else acts
    units = bands[bands["units"].notna() & (bands["units"] > 0)]
    units = pd.DataFrame({"tensor": units["tensor"], "step": units["step"],
                          "dead": units["dead_units"] / units["units"],
                          "saturated": units["saturated_units"] / units["units"]})
    no_units = ""
    if not units.empty and not (units[["dead", "saturated"]].fillna(0) != 0).any().any():
        no_units = (f"No unit was dead or saturated at any of the {units['step'].nunique()} snapshots "
                    f"shown, in any of the {units['tensor'].nunique()} layers with units.")
        units = units.iloc[0:0]
    last, picked = probes, ""
    if not probes.empty:
        last = probes[probes["step"] == probes["step"].max()]
        last, picked = pick_probes(last[last["index"] < MAX_PROBES_PER_MODULE], run.manifest)
    probe_notes = [n for n in (_sentence(run.manifest.get("probe_note")), picked) if n]
    layers = model_order(acts["tensor"], run.manifest) if not acts.empty else []
    return Activations(
        key=KEY, title=TITLE,
        bands=bands[["tensor", "step", *PCTS]].sort_values(["tensor", "step"]).reset_index(drop=True),
        units=units.sort_values(["tensor", "step"]).reset_index(drop=True),
        probes=last.reset_index(drop=True), layers=layers, no_units=no_units, probe_notes=probe_notes,
        caption=f"Percentile bands of each module's output over time, the fraction of dead "
                f"(ReLU-like, never positive) and saturated (tanh/sigmoid) units, at most "
                f"{MAX_LAYER_POINTS} snapshots per layer; and the probe batch's captures at the "
                f"last snapshot, in model order (first {MAX_PROBES_PER_MODULE} channels or heads "
                f"of at most {MAX_PROBE_MODULES} modules)."
                + (REUSED if any(split_call(n)[1] > 1 for n in layers) else ""))


def _sentence(text: str | None) -> str:
    """``text`` as a sentence (capital first, full stop last), or ``""``."""
    if not text:
        return ""
    text = text.strip()
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def build(t: RunTables) -> Activations:
    """The activations and probe captures of ``t``'s run."""
    return activations(t.run, t.kind("activation"), t.last("probes"))


def _matrix_encoding(chart: alt.Chart, scale: alt.Scale, label: str) -> alt.Chart:
    return chart.mark_rect().encode(
        x=alt.X("col:Q", title=None, axis=None, scale=alt.Scale(nice=False, zero=True)), x2=alt.X2("col2:Q"),
        y=alt.Y("row:Q", title=None, axis=None, scale=alt.Scale(nice=False, zero=True, reverse=True)), y2=alt.Y2("row2:Q"),
        color=alt.Color("value:Q", scale=scale, title=None),
        tooltip=[alt.Tooltip(f"{label}:N"), alt.Tooltip("row:Q"), alt.Tooltip("col:Q"),
                 alt.Tooltip("value:Q", format=".3g")],
    )


PANEL_WORDS = {"feature_map": "channel", "attention": "head", "hidden_state": "hidden state"}
"""What a probe panel's second header line calls its ``index`` in each kind of capture."""
PROBE_FIGURE_MODULES = 6
"""Modules per probe figure: six rows of panels fit an A4 page in the PDF (a figure is never split
across pages), so the probe captures come as one figure per six modules."""
LINE_BREAK = " · "
"""Between a panel's module and its channel or head: the header draws them as two lines."""


def probe_labels(names: list[str]) -> dict[str, tuple[str, int]]:
    """Each probe module's (panel label, call): long names lose their start, not the end that tells
    them apart (charts/names.py), among all the modules drawn, so that two figures never show the
    same label; a label's lines are no wider than its panel, so that the columns stay as wide as
    the panels and their legends (a longer label is broken at dots onto more lines)."""
    calls = {name: split_call(name) for name in names}
    modules = list(dict.fromkeys(module for module, _ in calls.values()))
    line = int(PROBE_PX / CHAR_PX)
    short = {m: LINE_BREAK.join(wrap_name(label, line))
             for m, label in zip(modules, short_labels(modules, fit=int((PROBE_PX + 60) / CHAR_PX)), strict=True)}
    return {name: (short[module], call) for name, (module, call) in calls.items()}


def _probe_chart(ds: Datasets, probes: pd.DataFrame, labels: dict[str, tuple[str, int]]) -> alt.Chart:
    """One figure of probe panels; a reused module's later calls say so on the panel's last line."""
    recs = []
    for p in probes.itertuples(index=False):
        short, call = labels[p.module]
        panel = f"{PANEL_WORDS.get(p.kind, p.kind)} {int(p.index)}"
        label = f"{short}{LINE_BREAK}{panel}" + (f", call {call}" if call > 1 else "")
        recs.append({"key": label, "label": label, "rows": int(p.rows), "cols": int(p.cols),
                     "module": f"{call_label(p.module)}, {panel}",
                     "values": nums(p.values, HEATMAP_DIGITS)})
    order = [r["label"] for r in recs]
    chart = _matrix_encoding(matrix_transforms(alt.Chart(ds.add(recs))),
                             alt.Scale(scheme="viridis"), "module")
    header = alt.Header(labelLimit=PROBE_PX + 60, labelExpr=f"split(datum.value, '{LINE_BREAK}')")
    return chart.properties(width=PROBE_PX, height=PROBE_PX).facet(
        facet=alt.Facet("label:N", sort=order, title=None, header=header),
        columns=4).resolve_scale(color="independent", x="independent", y="independent")


def activation_charts(section: Activations, ds: Datasets) -> list[Chart]:
    """Output percentile bands and dead/saturated fractions (per layer), and probe heatmaps."""
    charts = []
    if not section.bands.empty:
        charts.append(make("Activation distribution", bands_chart(
            ds, section.bands, section.layers, "output percentiles over time", "activation"), ds, layered=True))
    if not section.units.empty:
        u = section.units
        worst = (u.groupby("tensor")[["dead", "saturated"]].max().max(axis=1)
                 .sort_values(ascending=False, kind="stable").head(MAX_UNIT_LAYERS).index)
        u = u[u["tensor"].isin(set(worst))].melt(["tensor", "step"], ["dead", "saturated"], "kind", "fraction")
        u = u.dropna(subset=["fraction"])  # a ReLU has no saturated series, a tanh no dead one
        u = u.assign(series=u["tensor"].map(call_label) + " " + u["kind"])
        chart = alt.Chart(ds.add(columnar(u, "series", ["step", "fraction"]))).transform_flatten(
            ["step", "fraction"]).mark_line(strokeWidth=1.5).encode(
            x=step_x(), y=alt.Y("fraction:Q", title="fraction of units", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("series:N", title=None,
                            legend=alt.Legend(orient="bottom", columns=2, labelLimit=180)),
            tooltip=[alt.Tooltip("series:N"), alt.Tooltip("step:Q"), alt.Tooltip("fraction:Q", format=".1%")],
        ).properties(width=HALF, height=HEIGHT, title=f"dead / saturated units (≤ {MAX_UNIT_LAYERS} worst layers)")
        charts.append(make("Dead and saturated units", chart, ds))
    modules = list(dict.fromkeys(section.probes["module"])) if not section.probes.empty else []
    labels = probe_labels(modules)
    for start in range(0, len(modules), PROBE_FIGURE_MODULES):
        part = modules[start:start + PROBE_FIGURE_MODULES]
        title = "Probe captures"
        if len(modules) > PROBE_FIGURE_MODULES:
            title += f" (modules {start + 1}–{start + len(part)} of {len(modules)})"
        rows = section.probes[section.probes["module"].isin(part)]
        charts.append(make(title, _probe_chart(ds, rows, labels), ds, wide=True))
    return charts


SECTION = SectionType(KEY, TITLE, build, activation_charts)
