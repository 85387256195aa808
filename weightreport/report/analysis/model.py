"""The ReportModel: everything a report shows, as plain data (dataclasses and DataFrames).

Analysis builds it from a ``Run``; charts and templates only read it. Nothing here
formats HTML or computes statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from weightreport.report.analysis.findings import Finding


@dataclass
class Section:
    """One report section: its anchor, title, and a note when it has no data.

    Attributes:
        key: the anchor id (fixed ASCII, never user text).
        title: the heading.
        note: why the section is empty, or None when it has data.
        caption: a sentence on what the section shows and how its data was reduced.
    """

    key: str
    title: str
    note: str | None = None
    caption: str = ""

    @property
    def empty(self) -> bool:
        """True when the section has nothing to show."""
        return self.note is not None


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
    trainable_params: int = 0
    modules: list[ModuleRow] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


@dataclass
class Curves(Section):
    """Scalars over steps: ``step, name, value, metric, split`` (split is train or val)."""

    data: pd.DataFrame = field(default_factory=pd.DataFrame)
    metrics: list[str] = field(default_factory=list)


@dataclass
class Distributions(Section):
    """Histograms (first vs last snapshot) and percentile bands over time, per tensor.

    Attributes:
        hist: ``tensor, snapshot ("first"/"last"), step, left, right, density``.
        bands: ``tensor, step, p1 ... p99`` downsampled.
        layers: tensors in model order.
    """

    hist: pd.DataFrame = field(default_factory=pd.DataFrame)
    bands: pd.DataFrame = field(default_factory=pd.DataFrame)
    layers: list[str] = field(default_factory=list)


@dataclass
class StatsTable(Section):
    """Per tensor, first against last snapshot; ``rows`` are dicts keyed by column."""

    columns: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    first_step: int = 0
    last_step: int = 0


@dataclass
class Outliers(Section):
    """Outlier counts over time, the top outliers, and box-and-whisker summaries.

    Attributes:
        counts: ``tensor, step, outliers_3std, outliers_6std, outliers_iqr`` downsampled.
        top: ``tensor, index, step, value, z, source``.
        boxes: ``tensor, min, p1, p25, p50, p75, p99, max`` at the last snapshot.
    """

    counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    top: pd.DataFrame = field(default_factory=pd.DataFrame)
    boxes: pd.DataFrame = field(default_factory=pd.DataFrame)
    layers: list[str] = field(default_factory=list)


@dataclass
class Heatmap:
    """One 2-D weight matrix, pooled to at most 64 × 64, at one step."""

    tensor: str
    step: int
    rows: int
    cols: int
    values: list[float]


@dataclass
class Heatmaps(Section):
    """2-D weights and conv kernels as heatmaps, first and last snapshot when recorded."""

    maps: list[Heatmap] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)


@dataclass
class Dynamics(Section):
    """``tensor, step, update_ratio, grad_norm, dist_from_init`` downsampled."""

    data: pd.DataFrame = field(default_factory=pd.DataFrame)
    layers: list[str] = field(default_factory=list)


@dataclass
class Trajectories(Section):
    """``tensor, index, step, value`` for the recorded single weights; one panel per weight."""

    data: pd.DataFrame = field(default_factory=pd.DataFrame)
    layers: list[str] = field(default_factory=list)


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


@dataclass
class BatchNorm(Section):
    """BatchNorm input vs output, running vs batch statistics, and gamma/beta.

    Attributes:
        hist: ``module, side ("input"/"output"), left, right, density`` at the last snapshot.
        channels: ``module, channel, batch_mean, running_mean, batch_var, running_var,
            weight, bias`` at the last snapshot.
    """

    hist: pd.DataFrame = field(default_factory=pd.DataFrame)
    channels: pd.DataFrame = field(default_factory=pd.DataFrame)
    layers: list[str] = field(default_factory=list)
    step: int = 0


@dataclass
class ReportModel:
    """Everything one report shows, section by section, in display order."""

    title: str
    overview: Overview
    curves: Curves
    distributions: Distributions
    stats: StatsTable
    outliers: Outliers
    heatmaps: Heatmaps
    dynamics: Dynamics
    trajectories: Trajectories
    activations: Activations
    batchnorm: BatchNorm

    @property
    def sections(self) -> list[Section]:
        """The sections in display order."""
        return [self.overview, self.curves, self.distributions, self.stats, self.outliers,
                self.heatmaps, self.dynamics, self.trajectories, self.activations, self.batchnorm]
