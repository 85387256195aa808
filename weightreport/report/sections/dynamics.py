"""The update-dynamics section: update ratio, gradient norm and distance from initialisation."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.analysis.sampling import MAX_LAYER_POINTS, model_order, pick_steps
from weightreport.report.charts.common import Chart, Datasets, blank_layers, columnar, make
from weightreport.report.charts.figures import series_chart
from weightreport.report.sections.base import Section, SectionType

KEY, TITLE = "dynamics", "Update dynamics"


@dataclass
class Dynamics(Section):
    """``tensor, step, update_ratio, grad_norm, dist_from_init`` downsampled."""

    data: pd.DataFrame = field(default_factory=pd.DataFrame)
    layers: list[str] = field(default_factory=list)


def dynamics(run, params: pd.DataFrame, grads: pd.DataFrame) -> Dynamics:
    """Update-to-weight ratio, gradient norm and distance from initialisation over time."""
    if params.empty or (params["update_ratio"].isna().all() and grads.empty):
        return Dynamics(key=KEY, title=TITLE,
                        note="Fewer than two parameter snapshots and no gradients: nothing moved yet.")
    p = params[["tensor", "step", "update_ratio", "dist_from_init"]]
    g = grads[["tensor", "step", "norm"]].rename(columns={"norm": "grad_norm"})
    df = p.merge(g, on=["tensor", "step"], how="outer")
    df = df[df["step"].isin(pick_steps(df["step"]))].sort_values(["tensor", "step"])
    return Dynamics(key=KEY, title=TITLE, data=df.reset_index(drop=True),
                    layers=model_order(df["tensor"], run.manifest),
                    caption="Update ratio ‖w_t − w_prev‖/‖w_prev‖ between snapshots (log scale; "
                            "around 1e-3 is typical), gradient L2 norm, and distance from "
                            f"initialisation ‖w_t − w_0‖; at most {MAX_LAYER_POINTS} snapshots per layer.")


def build(t: RunTables) -> Dynamics:
    """The dynamics of ``t``'s parameters and gradients."""
    return dynamics(t.run, t.params, t.kind("grad"))


def dynamics_charts(section: Dynamics, ds: Datasets) -> list[Chart]:
    """Update ratio (log), gradient norm, and distance from init for the selected layer."""
    cols = ["update_ratio", "grad_norm", "dist_from_init"]
    data, layers, df = ds.add(columnar(section.data, "tensor", ["step", *cols])), section.layers, section.data
    return [
        make("Update ratio", series_chart(data, cols, layers, ["update_ratio"], "update-to-weight ratio",
                                          log=True, y_title="‖Δw‖ / ‖w‖"), ds, layered=True,
             blank=blank_layers(df, ["update_ratio"])),
        make("Gradient norm", series_chart(data, cols, layers, ["grad_norm"], "gradient L2 norm",
                                           y_title="‖g‖"), ds, layered=True, blank=blank_layers(df, ["grad_norm"])),
        make("Distance from init", series_chart(data, cols, layers, ["dist_from_init"],
                                                "distance from initialisation", y_title="‖w − w₀‖"),
             ds, layered=True, blank=blank_layers(df, ["dist_from_init"])),
    ]


SECTION = SectionType(KEY, TITLE, build, dynamics_charts)
