"""Tables of a small healthy run, built as DataFrames, that each findings test bends to show one problem."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from weightreport.report.analysis.findings import FINDING_BN_COLUMNS, FINDING_STATS_COLUMNS

STEPS = np.arange(0, 210, 10)
LAYERS = {"fc1.weight": 1000, "fc2.weight": 400}
ORDER = list(LAYERS)


@dataclass
class Tables:
    """The three tables the checks read."""

    stats: pd.DataFrame
    scalars: pd.DataFrame
    batchnorm: pd.DataFrame


def healthy() -> Tables:
    """A run with steady gradients, ~1e-3 updates, falling losses and calm BatchNorm."""
    rng = np.random.default_rng(0)
    rows = []
    for tensor, numel in LAYERS.items():
        for i, s in enumerate(STEPS):
            base = {c: np.nan for c in FINDING_STATS_COLUMNS}
            base.update(step=int(s), tensor=tensor, numel=numel, count=numel, nan_count=0, inf_count=0,
                        mean=0.0, std=0.1, min=-0.4, max=0.4, outliers_6std=0,
                        outliers_iqr=int(0.007 * numel))
            rows.append({**base, "kind": "param", "norm": 0.1 * np.sqrt(numel) * (1 + 0.001 * i),
                         "update_ratio": np.nan if i == 0 else 1e-2})
            if i:
                rows.append({**base, "kind": "grad", "norm": 1.0 + 0.05 * rng.standard_normal()})
        rows.append(None)
    rows = [r for r in rows if r is not None]
    for s in STEPS[1:]:
        base = {c: np.nan for c in FINDING_STATS_COLUMNS}
        base.update(step=int(s), tensor="relu1", kind="activation", numel=4096, count=4096, nan_count=0,
                    inf_count=0, mean=0.3, std=0.5, min=0.0, max=3.0, norm=20.0, outliers_6std=0,
                    outliers_iqr=10, units=32, dead_units=1, saturated_units=np.nan)
        rows.append(base)
        rows.append({**base, "tensor": "tanh1", "units": 32, "dead_units": np.nan, "saturated_units": 0})
    stats = pd.DataFrame(rows)[FINDING_STATS_COLUMNS]
    steps = np.arange(1, 201)
    loss = 2.3 * np.exp(-steps / 50) + 0.1 + 0.01 * rng.standard_normal(steps.size)
    val_steps = steps[steps % 20 == 0]
    val = 2.3 * np.exp(-val_steps / 50) + 0.15
    scalars = pd.DataFrame({"step": np.concatenate([steps, val_steps]),
                            "name": ["loss"] * steps.size + ["val_loss"] * val_steps.size,
                            "value": np.concatenate([loss, val])})
    bn = []
    for s in STEPS[1:]:
        for c in range(8):
            bn.append({"step": int(s), "module": "bn1", "channel": c, "batch_mean": 0.1 * c + 0.01,
                       "batch_var": 1.0 + 0.02 * c, "running_mean": 0.1 * c, "running_var": 1.0 + 0.02 * c,
                       "weight": 1.0 + 0.01 * c})
    return Tables(stats, scalars, pd.DataFrame(bn)[FINDING_BN_COLUMNS])


def where(df: pd.DataFrame, **eq) -> pd.Series:
    """A boolean mask of the rows whose columns equal the given values."""
    mask = pd.Series(True, index=df.index)
    for k, v in eq.items():
        mask &= df[k] == v
    return mask
