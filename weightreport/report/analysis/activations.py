"""The activations and BatchNorm sections."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weightreport.report.analysis.model import Activations, BatchNorm
from weightreport.report.analysis.sampling import MAX_LAYER_POINTS, model_order, pick_steps
from weightreport.report.analysis.weights import PCTS, hist_rows

MAX_PROBES_PER_MODULE = 4


def activations(run, acts: pd.DataFrame, probes: pd.DataFrame) -> Activations:
    """Percentile bands of activations, dead/saturated unit fractions, probe heatmaps."""
    title = "Activations"
    if acts.empty and probes.empty:
        return Activations(key="activations", title=title,
                           note="No activations were recorded (activations=False, or no forward "
                                "pass in training mode at a snapshot step) and no probe was given.")
    bands = acts[acts["step"].isin(pick_steps(acts["step"]))] if not acts.empty else acts
    units = bands[bands["units"].notna() & (bands["units"] > 0)]
    units = pd.DataFrame({"tensor": units["tensor"], "step": units["step"],
                          "dead": units["dead_units"] / units["units"],
                          "saturated": units["saturated_units"] / units["units"]})
    if not probes.empty:
        last = probes[probes["step"] == probes["step"].max()]
        last = last[last["index"] < MAX_PROBES_PER_MODULE].sort_values(["module", "kind", "index"])
    else:
        last = probes
    layers = model_order(acts["tensor"], run.manifest) if not acts.empty else []
    return Activations(
        key="activations", title=title,
        bands=bands[["tensor", "step", *PCTS]].sort_values(["tensor", "step"]).reset_index(drop=True),
        units=units.sort_values(["tensor", "step"]).reset_index(drop=True),
        probes=last.reset_index(drop=True), layers=layers,
        caption=f"Percentile bands of each module's output over time, the fraction of dead "
                f"(ReLU-like, never positive) and saturated (tanh/sigmoid) units, at most "
                f"{MAX_LAYER_POINTS} snapshots per layer; and the probe batch's captures at the "
                f"last snapshot (first {MAX_PROBES_PER_MODULE} channels or heads per module).")


def batchnorm(run, bn_hist: pd.DataFrame, bn: pd.DataFrame) -> BatchNorm:
    """Input vs output histograms, running vs batch statistics and gamma/beta per channel."""
    title = "BatchNorm"
    if bn_hist.empty and bn.empty:
        return BatchNorm(key="batchnorm", title=title, note="The model has no BatchNorm layers (or none ran at a snapshot).")
    step = int(bn["step"].max()) if not bn.empty else int(bn_hist["step"].max())
    h = bn_hist[bn_hist["step"] == bn_hist.groupby("tensor")["step"].transform("max")] if not bn_hist.empty else bn_hist
    h = h.assign(side=np.where(h["kind"] == "bn_input", "input", "output"), module=h["tensor"])
    channels = bn[bn["step"] == bn.groupby("module")["step"].transform("max")] if not bn.empty else bn
    mods = set(channels["module"]) | set(h["module"])
    return BatchNorm(
        key="batchnorm", title=title, hist=hist_rows(h, ["module", "side"]),
        channels=channels.drop(columns="step").sort_values(["module", "channel"]).reset_index(drop=True),
        layers=model_order(mods, run.manifest), step=step,
        caption="At the last snapshot: the layer's input against its output distribution; per "
                "channel, the batch mean and variance of the input against the running estimates; "
                "and the learned scale (gamma) and shift (beta).")
