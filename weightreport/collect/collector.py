"""``Collector``: records a model's histories alongside training, into a run directory.

    with Collector(model, "runs/exp1", every=10) as wr:
        for x, y in loader:
            ...; loss.backward(); opt.step()
            wr.step(loss=loss.item())

The collector decides the cadence and gathers tensors; ``stats.describe`` does the
maths, ``hooks.ActivationCapture`` the activations, ``writer.RunWriter`` the files.
"""

from __future__ import annotations

import platform
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from weightreport import __version__
from weightreport.collect.distributed import is_distributed, local_piece, on_rank_zero
from weightreport.collect.hooks import ActivationCapture
from weightreport.collect.selection import select_modules, trajectory_indices
from weightreport.collect.snapshot import SnapshotTaker
from weightreport.collect.structure import OutputShapeRecorder, describe_model, unwrap
from weightreport.errors import WeightReportError
from weightreport.runfmt.matrices import heatmap_rows
from weightreport.runfmt.reader import read_manifest
from weightreport.runfmt.schema import FORMAT_VERSION, INIT_WEIGHTS
from weightreport.runfmt.writer import RunWriter, prepare_directory


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        msg = f"{name} must be an integer >= {minimum}, not {value!r}"
        raise WeightReportError(msg)
    return value


class Collector:
    """Records weight, gradient, activation and BatchNorm histories of ``model``.

    Args:
        model: the model (a DDP or ``torch.compile`` wrapper is unwrapped; names are the
            inner model's).
        run_dir: the run directory to create (or, with ``mode="resume"``, continue).
        every: take a snapshot every this many steps.
        activations: capture activations and BatchNorm inputs/outputs on snapshot steps.
        gradients: record gradients.
        include: only these modules: name globs (``"fc*"``) or module types.
        exclude: not these modules (same forms); applied after ``include``.
        bins: histogram bins.
        trajectory_limit: elements whose exact values are recorded per parameter.
        flush_every: write to disk every this many snapshots (and on close).
        probe: a fixed input batch; its conv feature maps, attention weights and
            recurrent hidden states are captured at every snapshot.
        optimizer: record its learning rate(s) at every step.
        mode: "error" (default) refuses an existing run; "resume" continues it;
            "overwrite" deletes it and starts a new run (only a directory that holds a
            run is ever deleted).
        name: the run's name (default: the directory name).
        activation_sample: most elements described per activation (larger ones are
            described through a fixed stratified sample).
        seed: seeds the choice of sampled trajectory elements.
    """

    def __init__(
        self,
        model: nn.Module,
        run_dir: str | Path,
        *,
        every: int = 10,
        activations: bool = True,
        gradients: bool = True,
        include: Sequence[str | type] | None = None,
        exclude: Sequence[str | type] | None = None,
        bins: int = 64,
        trajectory_limit: int = 16,
        flush_every: int = 10,
        probe: object = None,
        optimizer: torch.optim.Optimizer | None = None,
        mode: str = "error",
        name: str | None = None,
        activation_sample: int = 4096,
        seed: int = 0,
    ) -> None:
        if not isinstance(model, nn.Module):
            msg = f"model must be a torch.nn.Module, not {type(model).__name__}"
            raise WeightReportError(msg)
        self.every = _positive_int("every", every)
        self.flush_every = _positive_int("flush_every", flush_every)
        bins = _positive_int("bins", bins, 2)
        trajectory_limit = _positive_int("trajectory_limit", trajectory_limit, 0)
        activation_sample = _positive_int("activation_sample", activation_sample, 16)
        self.model = unwrap(model)
        self.path = Path(run_dir)
        self.optimizer = optimizer
        self.probe = probe
        self._rank = torch.distributed.get_rank() if is_distributed() else 0
        resumed = on_rank_zero(lambda: prepare_directory(self.path, mode))
        self._writer = RunWriter(self.path) if self._rank == 0 else None
        modules = select_modules(self.model, include, exclude)
        params = [(f"{m}.{p}" if m else p, t) for m, mod in modules
                  for p, t in mod.named_parameters(recurse=False)]
        self._params = params
        traj = {n: trajectory_indices(n, t.numel(), trajectory_limit, seed) for n, t in params}
        self._settings = {
            "every": self.every, "activations": bool(activations), "gradients": bool(gradients),
            "include": _describe_filter(include), "exclude": _describe_filter(exclude),
            "bins": bins, "trajectory_limit": trajectory_limit, "flush_every": self.flush_every,
            "activation_sample": activation_sample, "seed": seed,
            "probe_shape": _shape_of(probe), "optimizer": type(optimizer).__name__ if optimizer else None,
        }
        self._capture = ActivationCapture(
            [(n, m) for n, m in modules if not list(m.children())], activation_sample
        ) if activations else None
        self._shapes = OutputShapeRecorder(self.model)
        self._structure = describe_model(self.model)
        if resumed:
            manifest = on_rank_zero(lambda: read_manifest(self.path))
            self._step = int(manifest.get("last_step", 0))
            self._snapshots = int(manifest.get("snapshots", 0))
            self._resumed_at = [*manifest.get("resumed_at", []), self._step]
            self._name = manifest.get("name") or name or self.path.name
        else:
            self._step, self._snapshots, self._resumed_at = 0, 0, []
            self._name = name or self.path.name
        if self._rank == 0 and not is_distributed():
            init = self._load_init() if resumed else {n: t.detach().cpu().clone() for n, t in params}
            if not resumed:
                torch.save(init, self.path / INIT_WEIGHTS)
        else:
            # Distributed: each rank keeps its own pieces; a resumed run measures the
            # distance from the weights it resumed with.
            init = {n: local_piece(t.detach())[0].cpu().clone() for n, t in params}
        self._taker = SnapshotTaker(params, traj, init, bins=bins, gradients=gradients)
        self._status, self._error = "running", None
        self._last_snapshot = -1
        self._unflushed = 0
        self._closed = False
        if resumed:
            self._last_snapshot = self._step
            self._flush()
        else:
            self._snapshot()
            self._record_heatmaps()
        self._arm()

    # --- the training loop's side -------------------------------------------------------

    def step(self, **scalars: float) -> int:
        """Advance one optimizer step, record ``scalars`` at it, and snapshot on cadence.

        Returns:
            The new step number.
        """
        self._check_open()
        self._step += 1
        self._record_scalars(scalars, lr=True)
        if self._step % self.every == 0:
            self._snapshot()
        self._arm()
        return self._step

    def log(self, **scalars: float) -> None:
        """Record ``scalars`` at the current step (validation metrics at the end of an epoch)."""
        self._check_open()
        self._record_scalars(scalars, lr=False)

    def close(self) -> None:
        """Take a final snapshot if the last step had none, flush, and mark the run complete."""
        if self._closed:
            return
        try:
            if self._status == "running" and self._last_snapshot != self._step:
                self._snapshot()
            if self._status == "running":
                self._add(self._taker.finish())  # a distributed run's last snapshot
                self._status = "complete"
                self._record_heatmaps()
        finally:
            self._closed = True
            self._remove_hooks()
            self._flush(final=True)

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and not self._closed:
            self._status = "failed"
            self._error = f"{exc_type.__name__}: {exc}"
            self._closed = True
            self._add(self._taker.abandon())
            self._remove_hooks()
            self._flush(final=True)
            return
        self.close()

    @property
    def current_step(self) -> int:
        """The last step recorded (0 before the first ``step()``)."""
        return self._step

    # --- internals ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            msg = f"the collector for {self.path} is closed; create a new one (mode='resume' continues the run)"
            raise WeightReportError(msg)

    def _arm(self) -> None:
        if self._capture is not None:
            self._capture.armed = (self._step + 1) % self.every == 0

    def _record_scalars(self, scalars: dict, lr: bool) -> None:
        rows = []
        for key, value in scalars.items():
            rows.append({"step": self._step, "name": key, "value": _to_float(key, value)})
        if lr and self.optimizer is not None:
            rates = [float(g["lr"]) for g in self.optimizer.param_groups if "lr" in g]
            if len(set(rates)) == 1:
                rates = rates[:1]  # one learning rate shared by every group
            for i, rate in enumerate(rates):
                key = "lr" if len(rates) == 1 else f"lr/group{i}"
                rows.append({"step": self._step, "name": key, "value": rate})
        if self._writer is not None:
            self._writer.add("scalars", rows)

    def _snapshot(self) -> None:
        captured = self._capture.take() if self._capture is not None else {}
        watched = self._capture.watched if self._capture is not None else []
        tables = self._taker.take(self._step, self.model, captured, watched)
        if self.probe is not None:
            from weightreport.collect.probes import capture_probes

            # every rank runs the probe: a sharded model's forward is collective
            tables["probes"] = capture_probes(self.model, self.probe, self._step)
        self._add(tables)
        self._snapshots += 1
        self._last_snapshot = self._step
        self._unflushed += 1
        if self._unflushed >= self.flush_every:
            self._flush()

    def _add(self, tables: dict[str, list]) -> None:
        if self._writer is not None:
            for table, rows in tables.items():
                self._writer.add(table, rows)

    def _record_heatmaps(self) -> None:
        """Weights as pooled matrices, at the first snapshot and at the end of the run."""
        rows = heatmap_rows(self._step, self._params)
        if self._writer is not None:
            self._writer.add("heatmaps", rows)

    def _flush(self, final: bool = False) -> None:
        if self._writer is None:  # only rank 0 writes
            self._unflushed = 0
            return
        try:
            self._writer.flush(self._manifest())
        except OSError as exc:
            msg = (f"weightreport could not write to {self.path}: {exc.strerror or exc}; "
                   f"{self._writer.buffered} rows stay in memory")
            if final or self._unflushed >= 4 * self.flush_every:
                raise WeightReportError(msg + "; free space and resume the run") from exc
            warnings.warn(msg + " and will be retried at the next flush", RuntimeWarning,
                          stacklevel=3)
            return
        self._unflushed = 0

    def _manifest(self) -> dict:
        structure = dict(self._structure)
        shapes = self._shapes.shapes
        structure["modules"] = [{**m, "output_shape": shapes.get(m["name"], m.get("output_shape"))}
                                for m in structure["modules"]]
        return {
            "format_version": FORMAT_VERSION, "name": self._name, "status": self._status,
            "error": self._error, "last_step": self._step, "snapshots": self._snapshots,
            "settings": self._settings, "model": structure,
            "trajectory_indices": self._taker.trajectory_manifest(),
            "environment": _environment(self._params), "resumed_at": self._resumed_at,
        }

    def _load_init(self) -> dict[str, torch.Tensor]:
        file = self.path / INIT_WEIGHTS
        try:
            return torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:
            msg = f"cannot resume {self.path}: {file.name} is unreadable ({exc}); start a new run"
            raise WeightReportError(msg) from None

    def _remove_hooks(self) -> None:
        if self._capture is not None:
            self._capture.close()
        self._shapes.close()


def _to_float(key: str, value: object) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            msg = f"scalar {key!r} is a tensor of {value.numel()} elements; pass one number"
            raise WeightReportError(msg)
        return float(value.detach())
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        msg = f"scalar {key!r} must be a number, not {type(value).__name__}"
        raise WeightReportError(msg) from None


def _describe_filter(items) -> list[str] | None:
    if items is None:
        return None
    return [i if isinstance(i, str) else getattr(i, "__name__", str(i)) for i in items]


def _shape_of(probe: object) -> object:
    if probe is None:
        return None
    if isinstance(probe, torch.Tensor):
        return list(probe.shape)
    if isinstance(probe, (tuple, list)):
        return [_shape_of(p) for p in probe]
    if isinstance(probe, dict):
        return {k: _shape_of(v) for k, v in probe.items()}
    return type(probe).__name__


def _environment(params) -> dict:
    device = str(params[0][1].device) if params else "cpu"
    return {
        "python": platform.python_version(), "torch": torch.__version__,
        "weightreport": __version__, "platform": sys.platform, "device": device,
    }

