"""One snapshot: gather the tensors, describe them in one go, and lay out table rows."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from weightreport.hooks import Captured
from weightreport.stats import describe


class SnapshotTaker:
    """Turns the model's current state into rows for every table.

    It keeps two copies of the watched parameters on their device: the weights at the
    previous snapshot (for the update ratio) and at initialisation (for the distance
    from it).

    Args:
        params: (qualified name, parameter) pairs.
        trajectories: name → flat indices whose exact values are recorded.
        init: name → the parameter's initial value (any device).
        bins: histogram bins.
        gradients: whether to record gradients.
    """

    def __init__(self, params, trajectories, init, *, bins: int, gradients: bool) -> None:
        self.params = params
        self.bins = bins
        self.gradients = gradients
        self._traj = {n: idx for n, idx in trajectories.items() if idx}
        self._traj_t: dict[str, torch.Tensor] = {}
        self._init = {n: init[n].to(p.device, torch.float32) for n, p in params if n in init}
        self._prev: dict[str, torch.Tensor] | None = None
        self._modules: dict[str, nn.Module] | None = None

    def trajectory_manifest(self) -> dict[str, list[int]]:
        """Name → recorded flat indices, for the manifest."""
        return dict(self._traj)

    def take(self, step: int, model: nn.Module, captured: dict[str, Captured]) -> dict[str, list]:
        """Describe everything at ``step`` and return rows per table."""
        tensors, keys = [], []
        for name, p in self.params:
            tensors.append(p)
            keys.append((name, "param", p.numel(), None))
        if self.gradients:
            for name, p in self.params:
                if p.grad is not None:
                    tensors.append(p.grad)
                    keys.append((name, "grad", p.numel(), None))
        for module_name, cap in captured.items():
            for kind, (sample, numel) in cap.samples.items():
                tensors.append(sample)
                keys.append((module_name, kind, numel, cap.units if kind == "activation" else None))
        extras, layout = self._extras(model, captured, keys)
        descriptions, values = describe(tensors, self.bins, extras)
        rows = self._rows(step, keys, descriptions, values, layout, captured)
        self._remember()
        return rows

    def _extras(self, model, captured, keys):
        """Tensors that ride along in the transfer: norms, trajectories, units, BN vectors."""
        extras, layout = [], []
        for name, p in self.params:
            w = p.detach().float()
            ref = self._init.get(name)
            prev = self._prev.get(name) if self._prev is not None else None
            norms = [torch.linalg.vector_norm(w - prev) if prev is not None else w.new_tensor(float("nan")),
                     torch.linalg.vector_norm(prev) if prev is not None else w.new_tensor(float("nan")),
                     torch.linalg.vector_norm(w - ref) if ref is not None else w.new_tensor(float("nan"))]
            extras.append(torch.stack(norms))
            layout.append(("norms", name))
            if name in self._traj:
                idx = self._traj_t.get(name)
                if idx is None or idx.device != p.device:
                    idx = torch.tensor(self._traj[name], dtype=torch.long, device=p.device)
                    self._traj_t[name] = idx
                extras.append(w.reshape(-1).index_select(0, idx))
                layout.append(("trajectory", name))
        for name, _kind, _numel, units in keys:
            if units is not None:
                extras.append(units)
                layout.append(("units", name))
        if any(cap.bn_batch is not None for cap in captured.values()):
            if self._modules is None:
                self._modules = dict(model.named_modules())
            for name, cap in captured.items():
                if cap.bn_batch is None or name not in self._modules:
                    continue
                module = self._modules[name]
                channels = cap.bn_batch[0].numel()
                vectors = [*cap.bn_batch]
                for attr in ("running_mean", "running_var", "weight", "bias"):
                    value = getattr(module, attr, None)
                    if value is None:
                        value = torch.full((channels,), float("nan"), device=cap.bn_batch[0].device)
                    vectors.append(value.detach().double().reshape(-1))
                extras.append(torch.cat(vectors))
                layout.append(("bn", name))
        return extras, layout

    def _rows(self, step, keys, descriptions, values, layout, captured):
        norms, traj, units, bn = {}, {}, {}, {}
        for (what, name), value in zip(layout, values):
            {"norms": norms, "trajectory": traj, "units": units, "bn": bn}[what][name] = value
        stats, hists = [], []
        for (name, kind, numel, _), desc in zip(keys, descriptions):
            row = {"step": step, "tensor": name, "kind": kind, **desc.stats, "numel": numel}
            if kind == "param":
                diff, prev, dist = norms[name].tolist()
                row["update_ratio"] = None if np.isnan(diff) or prev == 0 else diff / prev
                row["dist_from_init"] = None if np.isnan(dist) else dist
            if kind == "activation" and name in units:
                u, dead, sat = (int(v) for v in units[name])
                row.update(units=u, dead_units=dead, saturated_units=sat)
            stats.append(row)
            hists.append({"step": step, "tensor": name, "kind": kind,
                          "edges": desc.edges, "counts": desc.counts})
        trajectories = [
            {"step": step, "tensor": name, "index": i, "value": float(v)}
            for name, vals in traj.items() for i, v in zip(self._traj[name], vals)
        ]
        batchnorm = []
        for name, vec in bn.items():
            columns = vec.reshape(6, -1)
            for c in range(columns.shape[1]):
                batchnorm.append({"step": step, "module": name, "channel": c, **{
                    key: (None if np.isnan(columns[j, c]) else float(columns[j, c]))
                    for j, key in enumerate(("batch_mean", "batch_var", "running_mean",
                                             "running_var", "weight", "bias"))}})
        return {"stats": stats, "histograms": hists, "trajectories": trajectories,
                "batchnorm": batchnorm}

    def _remember(self) -> None:
        """Keep this snapshot's weights as the previous ones."""
        if self._prev is None:
            self._prev = {n: p.detach().float().clone() for n, p in self.params}
        else:
            for n, p in self.params:
                self._prev[n].copy_(p.detach())
