"""A synthetic run directory writer, for the report tests and the benchmark.

It writes real files (run.json and Parquet parts per ``docs/format.md``, with the
columns of ``weightreport.runfmt.schema.SCHEMAS``), so the report reads it through the real
``load_run``. Values are deterministic functions of a seed: no torch, no training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from weightreport.runfmt.schema import (
    FORMAT_VERSION,
    MANIFEST,
    QUANTILES,
    SCHEMAS,
    TABLES_DIR,
    part_name,
)

HEATMAPS_SCHEMA = pa.schema([("step", pa.int64()), ("tensor", pa.string()), ("rows", pa.int64()),
                             ("cols", pa.int64()), ("values", pa.list_(pa.float32()))])
"""The proposed ``heatmaps`` table (not yet part of format version 1)."""


@dataclass
class Spec:
    """What to put in a synthetic run."""

    name: str = "synthetic"
    layers: list[tuple[str, str, tuple[int, ...]]] = field(default_factory=list)
    """(module name, module type, weight shape); each gets ``.weight`` and ``.bias``."""
    snapshots: int = 6
    every: int = 10
    bins: int = 32
    status: str = "complete"
    nan_tensor: str | None = None
    heatmaps: bool = True
    probes: bool = True
    flush_every: int = 0
    """Split tables into this many snapshots per part (0: one part)."""
    dead_spread: bool = False
    """Give each activation layer its own final dead fraction (``dead_final``) instead of 4 of 16 units."""
    probe_maps: list[tuple[str, str, int, int, int]] | None = None
    """With ``probes``: ``(module, kind, count, rows, cols)`` maps per snapshot instead of the
    default two conv1 feature maps and one attention map."""


def dead_final(i: int) -> int:
    """With ``Spec.dead_spread``: the dead units (of 16) of the ``i``-th activation layer at the last snapshot.

    Spread over 0..15, so that some layers are below the 25% warning, most are warnings and
    those with 15 (94%) are errors.
    """
    return (i * 7) % 16


def small_spec(name: str = "tiny-run") -> Spec:
    """A fixed small run: a conv, a BatchNorm, two linears and an attention module."""
    return Spec(name=name, layers=[
        ("conv1", "Conv2d", (4, 1, 3, 3)),
        ("bn1", "BatchNorm2d", (4,)),
        ("fc1", "Linear", (16, 36)),
        ("fc2", "Linear", (1, 5)),
    ])


def resnet50_spec(snapshots: int = 2000) -> Spec:
    """About 160 parameter tensors shaped like ResNet-50's, with ``snapshots`` snapshots."""
    layers = [("conv1", "Conv2d", (64, 3, 7, 7)), ("bn1", "BatchNorm2d", (64,))]
    width = 64
    for stage, blocks in enumerate((3, 4, 6, 3)):
        out = width * 4
        for b in range(blocks):
            p = f"layer{stage + 1}.{b}"
            cin = out if b else (width * 2 if stage else 64)
            layers += [(f"{p}.conv1", "Conv2d", (width, cin, 1, 1)), (f"{p}.bn1", "BatchNorm2d", (width,)),
                       (f"{p}.conv2", "Conv2d", (width, width, 3, 3)), (f"{p}.bn2", "BatchNorm2d", (width,)),
                       (f"{p}.conv3", "Conv2d", (out, width, 1, 1)), (f"{p}.bn3", "BatchNorm2d", (out,))]
        width *= 2
    layers.append(("fc", "Linear", (1000, 2048)))
    return Spec(name="resnet50-synthetic", layers=layers, snapshots=snapshots, every=50, bins=64,
                heatmaps=False, probes=False, flush_every=100)


def _write(path: Path, table: str, data: pa.Table, flush: int, steps_per_part: int | None) -> None:
    folder = path / TABLES_DIR / table
    folder.mkdir(parents=True, exist_ok=True)
    if not steps_per_part:
        pq.write_table(data, folder / part_name(1))
        return
    steps = data.column("step").to_numpy()
    bounds = np.unique(steps // steps_per_part)
    for n, b in enumerate(bounds, start=1):
        mask = pa.array((steps // steps_per_part) == b)
        pq.write_table(data.filter(mask), folder / part_name(n))


def write_run(path: Path, spec: Spec, seed: int = 0) -> Path:
    """Write a synthetic run directory at ``path`` and return it."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    steps = np.arange(spec.snapshots, dtype=np.int64) * spec.every
    t = np.linspace(0.0, 1.0, spec.snapshots)
    tensors, modules = [], [{"name": "", "type": "Net", "depth": 0, "leaf": False, "params": [],
                             "num_params": 0, "output_shape": None}]
    for name, kind, shape in spec.layers:
        wshape = shape
        bshape = (shape[0],)
        tensors += [(f"{name}.weight", int(np.prod(wshape)), kind), (f"{name}.bias", bshape[0], kind)]
        params = [{"name": f"{name}.weight", "shape": list(wshape), "numel": int(np.prod(wshape)), "trainable": True},
                  {"name": f"{name}.bias", "shape": list(bshape), "numel": bshape[0], "trainable": True}]
        modules.append({"name": name, "type": kind, "depth": 1, "leaf": True, "params": params,
                        "num_params": sum(p["numel"] for p in params), "output_shape": [8, shape[0]]})
    total = sum(n for _, n, _ in tensors)
    modules[0]["num_params"] = total
    per_part = spec.every * spec.flush_every if spec.flush_every else None

    # scalars: loss, acc, val_loss, val_acc, lr at every `every // 2` steps
    srows = {"step": [], "name": [], "value": []}
    for s in range(1, int(steps[-1]) + 1, max(1, spec.every // 2)):
        x = s / max(1, steps[-1])
        for key, val in (("loss", 2.3 * np.exp(-3 * x) + 0.1), ("acc", 1 - 0.9 * np.exp(-3 * x)),
                         ("lr", 0.1 * (1 + np.cos(np.pi * x)) / 2)):
            srows["step"].append(s), srows["name"].append(key), srows["value"].append(float(val))
        if s % spec.every == 0:
            srows["step"] += [s, s]
            srows["name"] += ["val_loss", "val_acc"]
            srows["value"] += [float(2.4 * np.exp(-2.5 * x) + 0.2), float(1 - 0.9 * np.exp(-2.5 * x))]
    _write(path, "scalars", pa.Table.from_pydict(srows, schema=SCHEMAS["scalars"]), 0, per_part)

    # stats and histograms for params, grads, activations, bn inputs and outputs
    entries = [(n, "param", numel) for n, numel, _ in tensors]
    entries += [(n, "grad", numel) for n, numel, _ in tensors]
    for name, kind, _shape in spec.layers:
        if kind == "BatchNorm2d":
            entries += [(name, "bn_input", 4096), (name, "bn_output", 4096)]
        else:
            entries.append((name, "activation", 4096))
    n_snap, n_ent = spec.snapshots, len(entries)
    cols: dict[str, np.ndarray] = {}
    cols["step"] = np.repeat(steps, n_ent)
    cols["tensor"] = np.tile(np.array([e[0] for e in entries], dtype=object), n_snap)
    kinds = np.array([e[1] for e in entries], dtype=object)
    cols["kind"] = np.tile(kinds, n_snap)
    numel = np.tile(np.array([e[2] for e in entries], dtype=np.int64), n_snap)
    cols["numel"] = numel
    cols["count"] = numel
    base_std = rng.uniform(0.02, 0.2, n_ent)
    drift = rng.uniform(-0.5, 0.8, n_ent)
    std = (base_std[None, :] * (1 + drift[None, :] * t[:, None])).ravel()
    is_grad = cols["kind"] == "grad"
    std = np.where(is_grad, std * 0.05, std)
    mean = (rng.normal(0, 0.01, n_ent)[None, :] * (1 + 3 * t[:, None])).ravel()
    mean = np.where(np.isin(cols["kind"], ["activation", "bn_output"]), np.abs(mean) + std, mean)
    nan_count = np.zeros(n_snap * n_ent, dtype=np.int64)
    if spec.nan_tensor:
        nan_count[(cols["tensor"] == spec.nan_tensor) & (cols["step"] == steps[-1]) & (cols["kind"] == "param")] = 3
    cols["nan_count"] = nan_count
    cols["inf_count"] = np.zeros_like(nan_count)
    cols["mean"], cols["std"], cols["var"] = mean, std, std**2
    cols["min"], cols["max"] = mean - 3.5 * std, mean + 4.2 * std
    cols["skew"] = np.tile(rng.normal(0, 0.2, n_ent), n_snap)
    cols["kurtosis"] = np.tile(rng.normal(0, 0.5, n_ent), n_snap)
    cols["norm"] = np.sqrt(numel * (std**2 + mean**2))
    cols["zeros"] = np.where(cols["kind"] == "activation", numel // 3, 0)
    z = {1: -2.326, 5: -1.645, 25: -0.674, 50: 0.0, 75: 0.674, 95: 1.645, 99: 2.326}
    for q in QUANTILES:
        cols[f"p{q}"] = mean + z[q] * std
    cols["quantiles_exact"] = numel <= 8192
    cols["outliers_3std"] = (numel * 0.003 * (1 + t.repeat(n_ent))).astype(np.int64)
    cols["outliers_6std"] = np.zeros_like(nan_count)
    cols["outliers_iqr"] = (numel * 0.007).astype(np.int64)
    is_param = cols["kind"] == "param"
    upd = np.where(is_param, 1e-3 * np.exp(-2 * t.repeat(n_ent)), np.nan)
    upd[: n_ent] = np.nan
    cols["update_ratio"] = upd
    cols["dist_from_init"] = np.where(is_param, cols["norm"] * 0.1 * t.repeat(n_ent), np.nan)
    is_act = cols["kind"] == "activation"
    cols["units"] = np.where(is_act, 16, np.nan)
    final = np.full(n_ent, 4.0)
    if spec.dead_spread:
        act_idx = np.flatnonzero(kinds == "activation")
        final[act_idx] = [dead_final(i) for i in range(len(act_idx))]
    cols["dead_units"] = np.where(is_act, np.floor((final[None, :] * t[:, None]).ravel()), np.nan)
    cols["saturated_units"] = np.where(is_act, 0, np.nan)
    arrays = []
    for f in SCHEMAS["stats"]:
        arrays.append(pa.array(cols[f.name], type=f.type, from_pandas=True))
    _write(path, "stats", pa.Table.from_arrays(arrays, schema=SCHEMAS["stats"]), 0, per_part)

    # histograms: a normal shape on a power-of-two grid around each row's mean and std
    width = 2.0 ** np.ceil(np.log2(np.maximum(8 * std / spec.bins, 1e-12)))
    lo = np.floor((mean - 4 * width * spec.bins / 8) / width) * width
    grid = np.arange(spec.bins + 1)
    edges = lo[:, None] + width[:, None] * grid[None, :]
    centers = (edges[:, :-1] + edges[:, 1:]) / 2
    dens = np.exp(-0.5 * ((centers - mean[:, None]) / std[:, None]) ** 2)
    counts = np.floor(dens / dens.sum(1, keepdims=True) * numel[:, None]).astype(np.int64)
    n = len(mean)
    eo = pa.array(np.arange(n + 1, dtype=np.int32) * (spec.bins + 1))
    co = pa.array(np.arange(n + 1, dtype=np.int32) * spec.bins)
    hist = pa.Table.from_arrays([
        pa.array(cols["step"]), pa.array(cols["tensor"], type=pa.string()), pa.array(cols["kind"], type=pa.string()),
        pa.ListArray.from_arrays(eo, pa.array(edges.ravel())),
        pa.ListArray.from_arrays(co, pa.array(counts.ravel())),
    ], schema=SCHEMAS["histograms"])
    _write(path, "histograms", hist, 0, per_part)

    # trajectories: up to 5 elements per parameter, a random walk
    traj_idx: dict[str, list[int]] = {}
    trows = {"step": [], "tensor": [], "index": [], "value": []}
    for tname, numel_t, _ in tensors:
        idx = sorted(rng.choice(numel_t, size=min(5, numel_t), replace=False).tolist())
        traj_idx[tname] = idx
        walk = rng.normal(0, 0.01, (n_snap, len(idx))).cumsum(0) + rng.normal(0, 0.1, len(idx))
        for i, ix in enumerate(idx):
            trows["step"] += steps.tolist()
            trows["tensor"] += [tname] * n_snap
            trows["index"] += [ix] * n_snap
            trows["value"] += walk[:, i].tolist()
    _write(path, "trajectories", pa.Table.from_pydict(trows, schema=SCHEMAS["trajectories"]), 0, per_part)

    # batchnorm: per channel per snapshot
    brows: dict[str, list] = {f.name: [] for f in SCHEMAS["batchnorm"]}
    for name, kind, shape in spec.layers:
        if kind != "BatchNorm2d":
            continue
        ch = shape[0]
        bm = rng.normal(0, 0.5, ch)
        bv = rng.uniform(0.5, 2, ch)
        for k, s in enumerate(steps[1:], start=1):
            a = 1 - 0.9 ** k
            brows["step"] += [int(s)] * ch
            brows["module"] += [name] * ch
            brows["channel"] += list(range(ch))
            brows["batch_mean"] += (bm + rng.normal(0, 0.05, ch)).tolist()
            brows["batch_var"] += (bv * rng.uniform(0.9, 1.1, ch)).tolist()
            brows["running_mean"] += (bm * a).tolist()
            brows["running_var"] += (1 + (bv - 1) * a).tolist()
            brows["weight"] += (1 + 0.1 * t[k] * rng.normal(0, 1, ch)).tolist()
            brows["bias"] += (0.1 * t[k] * rng.normal(0, 1, ch)).tolist()
    _write(path, "batchnorm", pa.Table.from_pydict(brows, schema=SCHEMAS["batchnorm"]), 0, per_part)

    # probes: feature maps of the first conv and one attention map
    prows: dict[str, list] = {f.name: [] for f in SCHEMAS["probes"]}
    if spec.probes:
        maps = [(m, k, i, r, c) for m, k, n, r, c in spec.probe_maps for i in range(n)] if spec.probe_maps else [
            ("conv1", "feature_map", 0, 8, 8), ("conv1", "feature_map", 1, 8, 8), ("attn", "attention", 0, 6, 6)]
        for s in steps:
            for mod, kind, idx, r, c in maps:
                v = rng.random((r, c)).astype(np.float32)
                if kind == "attention":
                    v = v / v.sum(1, keepdims=True)
                prows["step"].append(int(s)), prows["module"].append(mod), prows["kind"].append(kind)
                prows["index"].append(idx), prows["rows"].append(r), prows["cols"].append(c)
                prows["values"].append(v.ravel().tolist())
    _write(path, "probes", pa.Table.from_pydict(prows, schema=SCHEMAS["probes"]), 0, per_part)

    # the proposed heatmaps table: 2-D weights at the first and last snapshot
    if spec.heatmaps:
        hrows: dict[str, list] = {f.name: [] for f in HEATMAPS_SCHEMA}
        for name, _kind, shape in spec.layers:
            if len(shape) < 2:
                continue
            r = shape[0] * (shape[2] if len(shape) == 4 else 1)
            c = shape[1] * (shape[3] if len(shape) == 4 else 1)
            r2, c2 = min(r, 64), min(c, 64)
            for s in (steps[0], steps[-1]):
                hrows["step"].append(int(s)), hrows["tensor"].append(f"{name}.weight")
                hrows["rows"].append(r2), hrows["cols"].append(c2)
                hrows["values"].append(rng.normal(0, 0.1, r2 * c2).astype(np.float32).tolist())
        _write(path, "heatmaps", pa.Table.from_pydict(hrows, schema=HEATMAPS_SCHEMA), 0, None)

    manifest = {
        "format_version": FORMAT_VERSION, "name": spec.name, "status": spec.status,
        "error": "RuntimeError: CUDA out of memory" if spec.status == "failed" else None,
        "last_step": int(steps[-1]), "snapshots": spec.snapshots,
        "settings": {"every": spec.every, "bins": spec.bins, "activations": True, "gradients": True,
                     "trajectory_limit": 5, "flush_every": spec.flush_every or 10},
        "model": {"class": "Net", "total_params": total, "trainable_params": total, "modules": modules},
        "trajectory_indices": traj_idx,
        "environment": {"python": "3.11.7", "torch": "2.13.0", "weightreport": "0.1.0",
                        "platform": "linux", "device": "cpu"},
        "resumed_at": [],
    }
    (path / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    return path
