"""Forward hooks that capture activations and BatchNorm batch statistics on snapshot steps.

The hooks are armed only for the forward pass of a step that will be a snapshot;
otherwise they return at once. An armed hook keeps a fixed, stratified sample of
its module's output (copied, so later in-place ops cannot change it), the per-unit
signal of dead or saturated units (``units.py``), and for BatchNorm the layer's input and
its per-channel batch statistics, measured (``bn_batch.py``).

Every call of a module in the captured forward is captured, each as its own record: a
ResNet block applies one ``relu`` after ``bn1`` and again after the residual add, and the
second call is the one that dies. The first call keeps the module's name, later ones are
``<name>#2``, ``#3``, ... (``runfmt.calls``), numbered in the order they run. A reused
BatchNorm is treated alike: each call has its own input, output and batch statistics,
compared with the running statistics the calls share.

The modules watched are the layers the user wrote (``structure.is_layer``) and every
BatchNorm, also one with children of its own: timm's ``BatchNormAct2d`` (EfficientNet,
MobileNetV3, RegNet) normalises, then applies its ``act`` child. Such a layer is recorded
as the layer it is: its input and batch statistics are BatchNorm's, its output is after
its activation, and its ``act`` child is watched as an activation as well.

Which forward is captured: the first training-mode forward of the model after arming.
The model's own forward hooks open and close that window, so later forwards of the
same step (gradient accumulation's micro-batches), activation checkpointing's
recomputation during backward and eval-mode forwards (the probe) are left out. Where
the step never calls the model itself (a Lightning ``training_step`` that calls
``self.net(x)``), the window opens at the first training-mode call of a watched module
and closes when backward reaches any captured output, before the next micro-batch (a
step without backward then counts the calls of all its training-mode forwards). The
window resets at every snapshot (``take``). Eval-mode calls are never captured. The
model's two hooks cost two Python calls per forward when unarmed, like a leaf's.

An armed hook times itself (``ActivationCapture.seconds``, the collector's cost record)
and never raises into the model's forward: an error turns the capture off with one
warning (``ActivationCapture.error`` says why), and training goes on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from time import perf_counter

import torch
from torch import nn

from weightreport.collect.bn_batch import batch_stats, saved_stats
from weightreport.collect.units import (
    CHANNELS_FIRST,
    SMOOTH,
    as_torch,
    place_units,
    slope,
    unit_dim,
    unit_reader,
)
from weightreport.runfmt.calls import call_name, split_call

SKIPPED = (nn.Identity, nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
           nn.Dropout3d, nn.AlphaDropout)
"""Leaf layers whose output repeats their input; not worth a row."""
BATCHNORM = nn.modules.batchnorm._BatchNorm

WAITING, IN_MODEL, LOOSE, CLOSED = "waiting", "in model", "loose", "closed"
"""The capture window's states: armed but no training forward yet; inside the model's own
forward; opened by a watched module called outside the model's forward; over for this step."""


@dataclass
class Captured:
    """What one call of a module in the armed forward left for the next snapshot.

    Attributes:
        samples: kind ("activation", "bn_input", "bn_output") → (sample, full numel).
        units: (mode, per-unit signal, reach) for ReLU-like ("dead": the unit's max over
            the batch, dead when ≤ 0) and saturating layers ("saturated": the unit's
            least distance from the centre, saturated when ≥ reach), or None. A live unit's
            signal may come from part of the batch (``units.settled_per_unit``).
        bn_batch: per-channel (mean, unbiased var) of a BatchNorm layer's input, or None.
        bn_count: values per channel behind ``bn_batch`` (batch × spatial size).
    """

    samples: dict[str, tuple[torch.Tensor, int]] = field(default_factory=dict)
    units: tuple[str, torch.Tensor, float] | None = None
    bn_batch: tuple[torch.Tensor, torch.Tensor] | None = None
    bn_count: int = 0


def _first_tensor(value) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


class ActivationCapture:
    """Hooks on the given modules (layers and BatchNorms), armed for one forward at a time.

    Args:
        modules: (qualified name, module) pairs to watch.
        sample: most elements kept per output (larger outputs are sampled).
        root: the model, whose own training-mode forward is the one captured (see the
            module's docstring); None: from the first watched call until backward.
    """

    def __init__(self, modules: list[tuple[str, nn.Module]], sample: int, root: nn.Module | None = None) -> None:
        self.armed = False
        self.sample = sample
        self.seconds = 0.0
        """Time spent in armed hooks."""
        self.error: str | None = None
        """Why the capture turned itself off, or None."""
        self._captured: dict[str, Captured] = {}
        self._slopes: dict[str, torch.Tensor | None] = {}
        self._indices: dict[tuple[int, torch.device], torch.Tensor] = {}
        self._calls: dict[str, int] = {}  # module → its calls captured in this step's window
        self._window = WAITING
        self._layout: tuple[int | None, int | None] = (CHANNELS_FIRST, None)  # the last layer's units: (dim, count)
        self._epoch = 0  # counts the windows, so that a stale backward hook closes none
        self._handles = []
        self.watched: list[tuple[str, bool]] = []
        """(name, is BatchNorm) of every hooked module, in definition order."""
        for name, module in modules:
            if isinstance(module, SKIPPED):
                continue
            self.watched.append((name, isinstance(module, BATCHNORM)))
            if isinstance(module, BATCHNORM):
                self._handles.append(module.register_forward_hook(self._guard(self._bn_hook(name))))
                continue
            if isinstance(as_torch(module), tuple(SMOOTH)):  # their slope needs the input, before an in-place op
                self._handles.append(module.register_forward_pre_hook(self._guard(self._slope_hook(name))))
            self._handles.append(module.register_forward_hook(
                self._guard(self._hook(name, unit_reader(module), unit_dim(module)))))
        if root is not None and self.watched:  # after the leaves' hooks: a root that is itself a leaf is captured first
            self._handles.append(root.register_forward_pre_hook(self._guard(self._enter), prepend=True))
            self._handles.append(root.register_forward_hook(self._guard(self._leave)))

    def _guard(self, hook):
        """``hook``, returning at once when unarmed, timed when armed, and never raising."""
        def guarded(*args) -> None:
            if not self.armed:
                return
            t0 = perf_counter()
            try:
                hook(*args)
            except Exception as exc:  # never into the model's forward
                self.error = f"an activation hook raised {type(exc).__name__}: {exc}"
                warnings.warn(f"weightreport stopped capturing activations: {self.error}. Training "
                              "goes on, and parameters and gradients are still recorded. This is a bug "
                              "in weightreport: please report it with this message.", RuntimeWarning,
                              stacklevel=2)
                self.close()
            finally:
                self.seconds += perf_counter() - t0

        # Under torch.compile the hook runs as plain Python between compiled graphs (Dynamo
        # does not trace it, and so does not warn about the clock it reads).
        return torch.compiler.disable(guarded)

    def take(self) -> dict[str, Captured]:
        """Hand over what was captured since the last call, forget it, and reset the window.

        Returns:
            Call name (``runfmt.calls``) → what it captured, in the order the calls ran.
        """
        captured, self._captured = self._captured, {}
        self._slopes.clear()
        self._calls.clear()
        self._window, self._epoch = WAITING, self._epoch + 1
        self._layout = (CHANNELS_FIRST, None)
        return captured

    def listed(self, captured: dict[str, Captured]) -> list[tuple[str, bool]]:
        """``watched`` with the later calls in ``captured`` after their module: (name, is BatchNorm).

        Under torch.distributed every rank passes this list to the snapshot; the ranks run
        the same forward, so they see the same calls and the lists agree.
        """
        calls: dict[str, int] = {}
        names = {name for name, _ in self.watched}
        for name in captured:
            module, k = split_call(name, names)
            calls[module] = max(calls.get(module, 1), k)
        return [(call_name(name, k), bn) for name, bn in self.watched for k in range(1, calls.get(name, 1) + 1)]

    def close(self) -> None:
        """Remove every hook."""
        self.armed = False
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._captured.clear()

    def _enter(self, model: nn.Module, inputs) -> None:
        if model.training and self._window == WAITING:
            self._window = IN_MODEL

    def _leave(self, model: nn.Module, inputs, output) -> None:
        if model.training and self._window == IN_MODEL:
            self._window = CLOSED

    def _next(self, name: str, module: nn.Module) -> str | None:
        """The name the module's call now running is captured under, or None when it is not captured."""
        if not (self.armed and module.training) or self._window == CLOSED:
            return None
        if self._window == WAITING:
            self._window = LOOSE
        return call_name(name, self._calls.get(name, 0) + 1)

    def _close_on_backward(self, out: torch.Tensor) -> None:
        """In a loose window, close it when backward reaches ``out`` (before the next micro-batch)."""
        if self._window != LOOSE or out.grad_fn is None:
            return
        epoch = self._epoch

        def close(grad_outputs) -> None:
            if self._epoch == epoch and self._window == LOOSE:
                self._window = CLOSED

        out.grad_fn.register_prehook(close)

    def _sample(self, t: torch.Tensor) -> tuple[torch.Tensor, int]:
        """A copy of ``t`` (float, in its shape: it is flattened on the host) or of a stratified sample of it (flat)."""
        x = t.detach()
        numel = x.numel()
        if numel <= self.sample:  # a copy: the layer after may change the output in place
            return (x.clone() if x.dtype == torch.float32 else x.float()), numel
        key = (numel, x.device)
        idx = self._indices.get(key)
        if idx is None:
            # One element from each of `sample` equal strata, at a seeded random offset:
            # no aliasing with channel or spatial strides, the same indices every time.
            gen = torch.Generator().manual_seed(numel)
            width = numel / self.sample
            base = torch.arange(self.sample, dtype=torch.float64) * width
            jitter = torch.rand(self.sample, generator=gen, dtype=torch.float64) * width
            idx = (base + jitter).long().clamp_(max=numel - 1).to(x.device)
            self._indices[key] = idx
        # ``take`` reads the elements in row-major order, as a flat view would, with no copy of a
        # non-contiguous output. The reference CNN's 22 samples took 1.7 ms a snapshot step with
        # it, against 2.0 ms with ``index_select`` on a flat view.
        return torch.take(x, idx).float(), numel

    def _note_units(self, out: torch.Tensor, dim: int) -> None:
        """Remember where the units of a layer's output ``out`` are (``units.place_units`` reads it).

        A 2-D output ``(N, C)`` has its units in both places, noted as None: a tensor made from
        it by a reshape is read by its own shape (LeViT's attention reshapes its BatchNorm1d's
        ``(batch · tokens, C)`` into ``(batch, tokens, heads · d)``, whose units are last).
        """
        if out.dim() >= 2:
            self._layout = (None if out.dim() == 2 else dim, out.shape[dim])

    def _hook(self, name: str, reader=None, layout: int | None = None):
        """The hook of a layer; ``reader``: its ``units.unit_reader``; ``layout``: where its output's
        units are (``units.unit_dim``), None: as before it."""
        def hook(module: nn.Module, inputs, output) -> None:
            call = self._next(name, module)
            if call is None:
                return
            self._calls[name] = self._calls.get(name, 0) + 1
            largest = self._slopes.pop(call, None)
            out = _first_tensor(output)
            if layout is not None and out is not None:
                self._note_units(out, layout)
            if out is None or not out.is_floating_point():
                return
            cap = Captured(samples={"activation": self._sample(out)})
            if reader is not None:
                cap.units = reader(out, largest, place_units(out, *self._layout))
            self._captured[call] = cap
            self._close_on_backward(out)

        return hook

    def _slope_hook(self, name: str):
        def hook(module: nn.Module, inputs) -> None:
            x = _first_tensor(inputs)
            call = self._next(name, module)
            if call is not None and x is not None and x.is_floating_point():
                self._slopes[call] = slope(module, x, place_units(x, *self._layout))

        return hook

    def _bn_hook(self, name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            call = self._next(name, module)
            if call is None:
                return
            self._calls[name] = self._calls.get(name, 0) + 1
            inp, out = _first_tensor(inputs), _first_tensor(output)
            if inp is None or out is None:
                return
            self._note_units(out, CHANNELS_FIRST)
            cap = Captured(samples={"bn_input": self._sample(inp), "bn_output": self._sample(out)})
            cap.bn_batch = saved_stats(out, inp) or batch_stats(inp)
            cap.bn_count = inp.numel() // inp.shape[1] if inp.dim() >= 2 and inp.shape[1] else 0
            self._captured[call] = cap
            self._close_on_backward(out)

        return hook
