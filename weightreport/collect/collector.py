"""``Collector``: records a model's histories alongside training, into a run directory.

    with Collector(model, "runs/exp1", every=10) as wr:
        for x, y in loader:
            ...; loss.backward(); opt.step()
            wr.step(loss=loss.item())

The collector decides the cadence and gathers tensors; ``stats.describe`` does the
maths, ``hooks.ActivationCapture`` the activations, ``writer.RunWriter`` the files.

Once it is built, the collector never raises into the training loop:
- a failed write (a full disk, a removed directory, lost permission) warns once and is
  retried at every flush, with a bounded buffer; flushes during training write on a thread
  (``flushes.py``);
- an error inside its own calls or hooks warns once, saying why, and turns the collector
  off: training goes on, and what was recorded so far stays readable;
- SIGTERM flushes what is buffered and marks the run ``interrupted`` (``signals.py``).
Errors in the arguments, or a run directory it cannot use, still raise at construction.
"""

from __future__ import annotations

import platform
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from time import perf_counter

import torch
from torch import nn

from weightreport import __version__
from weightreport.collect.arguments import (
    describe_filter,
    positive_int,
    shape_of,
    to_float,
    unique_parameters,
)
from weightreport.collect.cadence import Cadence, CostMeter
from weightreport.collect.config import config_dict
from weightreport.collect.distributed import is_distributed, local_piece, on_rank_zero
from weightreport.collect.flushes import Flushes
from weightreport.collect.gc_pause import collection_paused
from weightreport.collect.hooks import BATCHNORM, ActivationCapture
from weightreport.collect.selection import select_modules, trajectory_indices
from weightreport.collect.signals import TermHandler
from weightreport.collect.snapshot import SnapshotTaker
from weightreport.collect.structure import (
    OutputShapeRecorder,
    describe_model,
    in_parametrization,
    is_compiled,
    is_layer,
    unwrap,
)
from weightreport.errors import WeightReportError
from weightreport.runfmt.matrices import heatmap_rows
from weightreport.runfmt.reader import read_manifest
from weightreport.runfmt.schema import FORMAT_VERSION, INIT_WEIGHTS
from weightreport.runfmt.writer import RunWriter, prepare_directory
from weightreport.stats import kernels

COMPILED_NOTE = ("no activations were captured: the model was compiled (torch.compile) and run before the "
                 "Collector was created, and compiled code does not call hooks added later. Create the "
                 "Collector before torch.compile to record activations; parameters and gradients are "
                 "recorded either way")


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
        flush_every: write to disk every this many snapshots (on a thread, while training goes on)
            and on close.
        probe: a fixed input batch; its conv feature maps, attention weights and
            recurrent hidden states are captured at every snapshot.
        optimizer: record its learning rate(s) at every step.
        budget: the largest fraction of the run's wall time the collector may take (for
            example 0.01); it then lengthens the interval between snapshots (never below
            ``every``) from its measured costs, and records each change in run.json
            (``cadence``). None (the default) keeps the cadence at ``every``. Not with
            torch.distributed, whose ranks must agree on every snapshot step.
        config: the run's hyperparameters, stored in run.json as ``config`` and shown in the
            report and the summary: a mapping, a dataclass, an ``argparse.Namespace``, or
            an object with ``to_dict()`` (see ``config.py``; values JSON cannot hold are
            stored as their ``repr``).
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
        budget: float | None = None,
        config: object = None,
        name: str | None = None,
        activation_sample: int = 4096,
        seed: int = 0,
    ) -> None:
        t0 = perf_counter()
        if not isinstance(model, nn.Module):
            msg = f"model must be a torch.nn.Module, not {type(model).__name__}"
            raise WeightReportError(msg)
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                                   or not 0 < budget < 1):
            msg = f"budget must be a fraction between 0 and 1 (such as 0.01), or None; not {budget!r}"
            raise WeightReportError(msg)
        if budget is not None and is_distributed():
            msg = "budget cannot be used with torch.distributed (every rank must snapshot at the same steps); pass every= instead"
            raise WeightReportError(msg)
        self.every = positive_int("every", every)
        self.flush_every = positive_int("flush_every", flush_every)
        bins = positive_int("bins", bins, 2)
        trajectory_limit = positive_int("trajectory_limit", trajectory_limit, 0)
        activation_sample = positive_int("activation_sample", activation_sample, 16)
        self._config = config_dict(config)
        self._run_info: dict[str, object] = {}
        self._compiled = is_compiled(model)
        self._activation_note: str | None = None
        self._probe_note: str | None = None
        self.model = unwrap(model)
        self.path = Path(run_dir)
        self.optimizer = optimizer
        self.probe = probe
        self._rank = torch.distributed.get_rank() if is_distributed() else 0
        resumed = on_rank_zero(lambda: prepare_directory(self.path, mode))
        self._writer = RunWriter(self.path) if self._rank == 0 else None
        modules = select_modules(self.model, include, exclude)
        params, self._aliases = unique_parameters(modules)
        self._params = params
        traj = {n: trajectory_indices(n, t.numel(), trajectory_limit, seed) for n, t in params}
        self._settings = {
            "every": self.every, "activations": bool(activations), "gradients": bool(gradients),
            "include": describe_filter(include), "exclude": describe_filter(exclude),
            "bins": bins, "trajectory_limit": trajectory_limit, "flush_every": self.flush_every,
            "activation_sample": activation_sample, "seed": seed, "budget": budget,
            "probe_shape": shape_of(probe), "optimizer": type(optimizer).__name__ if optimizer else None,
        }
        self._capture = ActivationCapture(
            [(n, m) for n, m in modules if (is_layer(m) or isinstance(m, BATCHNORM)) and not in_parametrization(n)],
            activation_sample,
            root=self.model) if activations else None
        self._shapes = OutputShapeRecorder(self.model)
        self._structure = describe_model(self.model)
        if resumed:
            manifest = on_rank_zero(lambda: read_manifest(self.path))
            self._step = int(manifest.get("last_step", 0))
            self._snapshots = int(manifest.get("snapshots", 0))
            self._resumed_at = [*manifest.get("resumed_at", []), self._step]
            self._name = manifest.get("name") or name or self.path.name
            if self._config is None:
                self._config = manifest.get("config")
            self._run_info = dict(manifest.get("run_info") or {})
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
        self._cadence = Cadence(self.every, budget, self._step)
        self._meter = CostMeter()
        self._compiled_before = kernels.compile_seconds()  # another collector's compiles are not this one's
        self._last_snapshot = -1
        self._writes = Flushes(self._writer, self.path, self.flush_every, self._manifest,
                               on_bug=lambda exc: self._turn_off("writing the run", exc))
        self._closed = False
        self._off: str | None = None  # why the collector turned itself off
        if resumed:
            self._last_snapshot = self._step
            self._writes.flush()
        else:
            self._snapshot()
            self._record_heatmaps()
        self._arm()
        self._term = TermHandler(self._interrupted)
        self._writes.started = True  # from here on, flushes during training write on a thread
        self._meter.stop(t0)

    # --- the training loop's side -------------------------------------------------------

    def step(self, **scalars: float) -> int:
        """Advance one optimizer step, record ``scalars`` at it, and snapshot on cadence.

        Returns:
            The new step number.
        """
        self._check_open()
        t0 = self._enter()
        self._step += 1
        try:
            if self._off is None:
                self._record_scalars(scalars, lr=True)
                if self._cadence.due(self._step):
                    self._snapshot(timed_from=t0)
                self._arm()
        except Exception as exc:  # never into the training loop
            self._turn_off("step()", exc)
        self._leave(t0)
        return self._step

    def log(self, **scalars: float) -> None:
        """Record ``scalars`` at the current step (validation metrics at the end of an epoch)."""
        self._check_open()
        t0 = self._enter(training=False)
        try:
            if self._off is None:
                self._record_scalars(scalars, lr=False)
        except Exception as exc:
            self._turn_off("log()", exc)
        self._leave(t0)

    def run_info(self, **values: object) -> None:
        """Record facts about the run that are not training curves: runtime, throughput, FLOPs.

        They go in run.json ``run_info`` (a later value under a name replaces the earlier one) and
        in the report's overview. A value that is not a number or text is stored as its ``repr``.
        """
        self._check_open()
        for key, value in values.items():
            plain = isinstance(value, (bool, int, float, str))
            self._run_info[str(key)] = value if plain else repr(value)

    def close(self) -> None:
        """Take a final snapshot if the last step had none, flush, and mark the run complete."""
        if self._closed:
            return
        t0 = self._enter(training=False)
        try:
            if self._status == "running" and self._off is None:
                if self._last_snapshot != self._step:
                    self._snapshot()
                self._add(self._taker.finish())  # a distributed run's last snapshot
                self._record_heatmaps()
            if self._status == "running":
                self._status = "complete"
        except Exception as exc:
            self._turn_off("close()", exc)
            self._status = "complete"
        finally:
            self._closed = True
            self._remove_hooks()
            self._leave(t0, final=True)

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and not self._closed:
            t0 = self._enter(training=False)
            if self._status == "running":
                self._status = "failed"
                self._error = f"{exc_type.__name__}: {exc}"
            self._closed = True
            try:
                self._add(self._taker.abandon())
            except Exception as inner:  # the training's own error is the one to see
                self._turn_off("the failed run's last snapshot", inner)
            self._remove_hooks()
            self._leave(t0, final=True)
            return
        self.close()

    @property
    def overhead(self) -> dict:
        """What the collector cost so far: ``{"collector_s", "training_s", "fraction", "compile_s"}``
        (``CostMeter.figures``; ``compile_s``: the kernels this collector's calls compiled)."""
        hooks_s = self._capture.seconds if self._capture is not None else 0.0
        return self._meter.figures(hooks_s, kernels.compile_seconds() - self._compiled_before)

    @property
    def current_step(self) -> int:
        """The last step recorded (0 before the first ``step()``)."""
        return self._step

    # --- internals ----------------------------------------------------------------------

    def _enter(self, training: bool = True) -> float:
        """Start timing a call; the time since the last call was training's."""
        t0 = perf_counter()
        if training:
            self._cadence.trained(t0 - self._meter.last)
        self._term.busy = True
        return t0

    def _leave(self, t0: float, final: bool = False) -> None:
        """End a call: flush when closing, stop its clock, and act on a SIGTERM held meanwhile."""
        if final:
            self._writes.flush(final=True)
        self._meter.stop(t0)
        self._term.busy = False
        if final:
            self._term.remove()
        elif self._term.pending is not None:
            self._term.fire()

    def _turn_off(self, where: str, exc: BaseException) -> None:
        """Stop recording after an error of the collector's own, with one loud warning."""
        if is_distributed():  # a rank that stopped would leave the others waiting in a collective
            raise exc
        if self._off is None:
            self._off = f"at step {self._step}, {where} raised {type(exc).__name__}: {exc}"
            warnings.warn(
                f"weightreport stopped recording {self._off}. Training goes on; "
                f"{self.path} keeps what was recorded until now. This is a bug in weightreport: please "
                "report it with this message.", RuntimeWarning, stacklevel=3)
            self._remove_hooks()

    def _interrupted(self) -> None:
        """SIGTERM: flush what is buffered and mark the run interrupted."""
        if self._closed:
            return
        if self._status == "running":
            self._status = "interrupted"
            self._error = "SIGTERM: the process was asked to stop (preemption or a scheduler's time limit)"
        self._writes.flush(final=True)

    def _check_open(self) -> None:
        if self._closed:
            msg = f"the collector for {self.path} is closed; create a new one (mode='resume' continues the run)"
            raise WeightReportError(msg)

    def _arm(self) -> None:
        if self._capture is not None:
            self._capture.armed = self._off is None and self._cadence.due(self._step + 1)

    def _record_scalars(self, scalars: dict, lr: bool) -> None:
        rows = []
        for key, value in scalars.items():
            try:
                rows.append({"step": self._step, "name": key, "value": to_float(key, value)})
            except WeightReportError as exc:  # a bad value costs its row, not the training
                warnings.warn(f"weightreport skipped a scalar at step {self._step}: {exc}",
                              RuntimeWarning, stacklevel=4)
        if lr and self.optimizer is not None:
            rates = [float(g["lr"]) for g in self.optimizer.param_groups if "lr" in g]
            if len(set(rates)) == 1:
                rates = rates[:1]  # one learning rate shared by every group
            for i, rate in enumerate(rates):
                key = "lr" if len(rates) == 1 else f"lr/group{i}"
                rows.append({"step": self._step, "name": key, "value": rate})
        if self._writer is not None:
            self._writer.add("scalars", rows)

    def _snapshot(self, timed_from: float | None = None) -> None:
        with collection_paused():
            self._take_snapshot(perf_counter() if timed_from is None else timed_from)

    def _take_snapshot(self, start: float) -> None:
        hooks_before = self._capture.seconds if self._capture is not None else 0.0
        compiled_before = kernels.compile_seconds()
        armed = self._capture is not None and self._capture.armed  # hooks were on for this step's forward
        captured = self._capture.take() if self._capture is not None else {}
        if armed and self._compiled and not captured and self._activation_note is None:
            self._activation_note = COMPILED_NOTE
            warnings.warn(f"weightreport: {COMPILED_NOTE}", RuntimeWarning, stacklevel=4)
        # every module and call, that all ranks describe alike (one process needs no list)
        watched = self._capture.listed(captured) if self._capture is not None and is_distributed() else []
        tables = self._taker.take(self._step, self.model, captured, watched)
        if self.probe is not None:
            from weightreport.collect.probes import capture_probes

            # every rank runs the probe: a sharded model's forward is collective
            notes: list[str] = []
            tables["probes"] = capture_probes(self.model, self.probe, self._step, notes=notes)
            self._probe_note = notes[0] if notes else None
        if self._writes.room():  # else dropped, though taken: a distributed run's ranks must stay in step
            self._add(tables)
            self._snapshots += 1
            self._writes.added()
        self._last_snapshot = self._step
        hooks_s = (self._capture.seconds if self._capture is not None else 0.0) - hooks_before
        compiling = kernels.compile_seconds() - compiled_before
        self._cadence.taken(self._step, perf_counter() - start + hooks_s - compiling)

    def _add(self, tables: dict[str, list]) -> None:
        if self._writer is not None:
            for table, rows in tables.items():
                self._writer.add(table, rows)

    def _record_heatmaps(self) -> None:
        """Weights as pooled matrices, at the first snapshot and at the end of the run."""
        rows = heatmap_rows(self._step, self._params)
        if self._writer is not None:
            self._writer.add("heatmaps", rows)

    def _manifest(self) -> dict:
        structure = dict(self._structure)
        shapes = self._shapes.shapes
        structure["modules"] = [{**m, "output_shape": shapes.get(m["name"], m.get("output_shape"))}
                                for m in structure["modules"]]
        return {
            "format_version": FORMAT_VERSION, "name": self._name, "status": self._status,
            "error": self._error, "last_step": self._step, "snapshots": self._snapshots,
            "settings": self._settings, "config": self._config, "run_info": self._run_info, "model": structure,
            "aliases": self._aliases,
            "trajectory_indices": self._taker.trajectory_manifest(),
            "environment": _environment(self._params), "resumed_at": self._resumed_at,
            "overhead": self.overhead, "cadence": self._cadence.changes,
            "dropped_snapshots": self._writes.dropped, "activation_note": self._activation_note,
            "probe_note": self._probe_note,
            "collector_error": self._off or (self._capture.error if self._capture is not None else None),
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


def _environment(params) -> dict:
    device = str(params[0][1].device) if params else "cpu"
    return {
        "python": platform.python_version(), "torch": torch.__version__,
        "weightreport": __version__, "platform": sys.platform, "device": device,
        "world_size": torch.distributed.get_world_size() if is_distributed() else 1,
    }

