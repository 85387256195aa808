"""Forward hooks that capture activations and BatchNorm batch statistics on snapshot steps.

The hooks are armed only for the forward pass of a step that will be a snapshot;
otherwise they return at once. An armed hook keeps a fixed, stratified sample of
its module's output (copied, so later in-place ops cannot change it), the number of
dead or saturated units, and for BatchNorm the layer's input and its per-channel batch
statistics, measured from the input.

Every call of a module in the captured forward is captured, each as its own record: a
ResNet block applies one ``relu`` after ``bn1`` and again after the residual add, and the
second call is the one that dies. The first call keeps the module's name, later ones are
``<name>#2``, ``#3``, ... (``runfmt.calls``), numbered in the order they run. A reused
BatchNorm is treated alike: each call has its own input, output and batch statistics,
compared with the running statistics the calls share.

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

import math
import warnings
from dataclasses import dataclass, field
from time import perf_counter

import torch
from torch import nn

from weightreport.runfmt.calls import call_name, split_call

DEAD_SLOPE = 1e-3
"""A smooth activation's unit is dead when its derivative stays below this on the whole batch
(the functions' largest slope is about 1)."""

EXACT_DEAD = (nn.ReLU, nn.ReLU6)
"""The derivative is exactly 0 where the output is ≤ 0: a unit is dead when its output is ≤ 0
for the whole batch (ReLU6's upper end, at 6, is not counted)."""
ZERO_BELOW = (nn.Hardswish,)
"""The derivative is exactly 0 below −3, where the output is exactly 0: a unit is dead when
its output is 0 for the whole batch."""


def _gelu_slope(module: nn.GELU, x: torch.Tensor) -> torch.Tensor:
    if module.approximate == "tanh":
        k = math.sqrt(2.0 / math.pi)
        t = torch.tanh(k * (x + 0.044715 * x**3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
    return 0.5 * (1 + torch.erf(x / math.sqrt(2.0))) + x * torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _silu_slope(module: nn.SiLU, x: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(x)
    return s * (1 + x * (1 - s))


def _mish_slope(module: nn.Mish, x: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(nn.functional.softplus(x))
    return t + x * torch.sigmoid(x) * (1 - t * t)


def _softplus_slope(module: nn.Softplus, x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(module.beta * x)


class QuickGELU(nn.Module):
    """transformers' ``QuickGELUActivation``, x·σ(1.702·x), as a type the tables below can name."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def _quick_gelu_slope(module: QuickGELU, x: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(1.702 * x)
    return s * (1 + 1.702 * x * (1 - s))


SMOOTH = {nn.GELU: _gelu_slope, nn.SiLU: _silu_slope, nn.Mish: _mish_slope, nn.Softplus: _softplus_slope,
          QuickGELU: _quick_gelu_slope}
"""Smooth activations whose slope tends to 0 on one side → their derivative f'(x): a unit is
dead when |f'(x)| < ``DEAD_SLOPE`` for the whole batch (taken from the layer's input)."""
NEVER_DEAD = (nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU)
"""Their slope never reaches 0 (ELU's only in the limit), so no unit is counted dead."""
SATURATING = {nn.Tanh: (0.0, 0.99), nn.Sigmoid: (0.5, 0.49)}
"""Layer → (centre, reach): a unit is saturated when ``|y - centre| >= reach`` for the whole
batch; the derivative is then below 2 % (tanh) or 1 % (sigmoid) of its largest value.
Hardtanh and Hardsigmoid (``CLAMPING``) saturate exactly, at the ends of their range,
where the derivative is exactly 0 (``_clamp_ends``)."""
CLAMPING = (nn.Hardtanh, nn.Hardsigmoid)  # Hardtanh's kin ReLU6 is caught earlier, as EXACT_DEAD
UNIT_LAYERS = (*EXACT_DEAD, *ZERO_BELOW, *SMOOTH, *CLAMPING, *SATURATING)  # every kind ``_units`` counts

TRANSFORMERS = {
    "GELUActivation": nn.GELU(), "NewGELUActivation": nn.GELU(approximate="tanh"),
    "GELUTanh": nn.GELU(approximate="tanh"), "PytorchGELUTanh": nn.GELU(approximate="tanh"),
    "FastGELUActivation": nn.GELU(approximate="tanh"), "AccurateGELUActivation": nn.GELU(approximate="tanh"),
    "QuickGELUActivation": QuickGELU(), "SiLUActivation": nn.SiLU(), "MishActivation": nn.Mish(),
    "ReLUSquaredActivation": nn.ReLU(),
}
"""transformers' own activation modules (BERT's ``GELUActivation``, GPT-2's ``NewGELUActivation``,
...), matched by class name within the ``transformers`` package so that it is never imported → the
torch module with the same derivative, whose rule above applies. The tanh-approximated GELUs
(new, fast, accurate) are one function; ReLU² dies where ReLU does (its output is 0, its slope
2·max(x, 0) is 0)."""


def as_torch(module: nn.Module) -> nn.Module:
    """``module``, or for one of transformers' activations (``TRANSFORMERS``) its torch twin."""
    kind = type(module)
    if kind.__module__.startswith("transformers.") and kind.__name__ in TRANSFORMERS:
        return TRANSFORMERS[kind.__name__]
    return module


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
            least distance from the centre, saturated when ≥ reach), or None.
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
    """Hooks on the given leaf modules, armed for one forward at a time.

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
            self._handles.append(module.register_forward_hook(self._guard(self._hook(name, has_units(module)))))
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
        """A copy of ``t`` (flattened, float) or of a stratified sample of it."""
        x = t.detach().reshape(-1)
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
        return x.index_select(0, idx).float(), numel

    def _hook(self, name: str, units: bool = True):
        def hook(module: nn.Module, inputs, output) -> None:
            call = self._next(name, module)
            if call is None:
                return
            self._calls[name] = self._calls.get(name, 0) + 1
            slope = self._slopes.pop(call, None)
            out = _first_tensor(output)
            if out is None or not out.is_floating_point():
                return
            cap = Captured(samples={"activation": self._sample(out)})
            if units:
                cap.units = _units(module, out, slope)
            self._captured[call] = cap
            self._close_on_backward(out)

        return hook

    def _slope_hook(self, name: str):
        def hook(module: nn.Module, inputs) -> None:
            x = _first_tensor(inputs)
            call = self._next(name, module)
            if call is not None and x is not None and x.is_floating_point():
                self._slopes[call] = _slope(module, x)

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
            cap = Captured(samples={"bn_input": self._sample(inp), "bn_output": self._sample(out)})
            cap.bn_batch = _saved_stats(out, inp) or _batch_stats(inp)
            cap.bn_count = inp.numel() // inp.shape[1] if inp.dim() >= 2 and inp.shape[1] else 0
            self._captured[call] = cap
            self._close_on_backward(out)

        return hook


def _unit_dims(t: torch.Tensor) -> tuple[int, ...] | None:
    """Dimensions to reduce so that one value per unit (dim 1) remains."""
    if t.dim() < 2:
        return None
    return tuple(d for d in range(t.dim()) if d != 1)


def has_units(module: nn.Module) -> bool:
    """Whether ``_units`` can find dead or saturated units in this layer's output (decided
    once per layer: the checks cost 3 µs on every armed call of every other layer)."""
    return isinstance(as_torch(module), UNIT_LAYERS)


def _units(module: nn.Module, out: torch.Tensor, slope: torch.Tensor | None = None
           ) -> tuple[str, torch.Tensor, float] | None:
    """The per-unit signal of an activation that can die or saturate, else None.

    Kept per unit (not yet counted) so that ranks of a distributed run can merge
    them with one max or min reduction before counting (``count_units``): "dead" units
    are those whose signal is ≤ 0, "saturated" ones those whose signal is ≥ reach.

    Args:
        module: the activation layer.
        out: its output.
        slope: for a smooth activation (``SMOOTH``), the per-unit largest |f'(x)| over the
            batch, taken from the input by the pre-hook.
    """
    if _unit_dims(out) is None:
        return None
    module = as_torch(module)
    y = out.detach()
    if isinstance(module, EXACT_DEAD):
        return "dead", _per_unit(y, torch.amax).double(), 0.0
    if isinstance(module, ZERO_BELOW):
        return "dead", _per_unit(y.abs(), torch.amax).double(), 0.0
    if isinstance(module, tuple(SMOOTH)):
        return ("dead", slope.double() - DEAD_SLOPE, 0.0) if slope is not None else None
    if isinstance(module, CLAMPING):
        centre, reach = _clamp_ends(module)
        return "saturated", _per_unit((y - centre).abs(), torch.amin).double(), reach
    for kind, (centre, reach) in SATURATING.items():
        if isinstance(module, kind):
            return "saturated", _per_unit((y - centre).abs(), torch.amin).double(), reach
    return None


def _clamp_ends(module: nn.Module) -> tuple[float, float]:
    """(centre, reach) of a clamping activation: the output is at an end, where the derivative
    is exactly 0, when ``|y - centre| >= reach`` (reach a hair inside the half-range, so that
    float32 rounding of ``y - centre`` never hides an end)."""
    lo, hi = (0.0, 1.0) if isinstance(module, nn.Hardsigmoid) else (float(module.min_val), float(module.max_val))
    return (lo + hi) / 2, (hi - lo) / 2 * (1 - 1e-6)


def _slope(module: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """The per-unit largest |f'(x)| of a smooth activation over the batch, from its input."""
    module = as_torch(module)
    for kind, derivative in SMOOTH.items():
        if isinstance(module, kind) and _unit_dims(x) is not None:
            return _per_unit(derivative(module, x.detach().float()).abs(), torch.amax)
    return None


def _per_unit(y: torch.Tensor, reduce) -> torch.Tensor:
    """``reduce`` (``torch.amax`` or ``torch.amin``) over every dimension but 1, the trailing ones first.

    Reducing the contiguous trailing dimensions, then the batch, is about 20 % faster
    than one reduction over the strided dimensions (0, 2, 3, ...); a max or min is
    exact in any order.
    """
    if y.dim() <= 2:
        return reduce(y, dim=0)
    return reduce(reduce(y.flatten(2), dim=2), dim=0)


def count_units(mode: str, signal, reach: float) -> tuple[int, int | None, int | None]:
    """(units, dead, saturated) from a layer's merged per-unit signal (a numpy array).

    The count that does not apply is None: a ReLU cannot saturate, a tanh cannot die.
    """
    if mode == "dead":
        return len(signal), int((signal <= 0).sum()), None
    return len(signal), None, int((signal >= reach).sum())


SAVED_VAR_FLOOR = 1e-3
"""``_saved_stats`` takes a layer's variance from BatchNorm's saved ``1/sqrt(var + eps)`` only
where every channel's ``var`` is at least this fraction of ``var + eps``: float32's rounding of
the saved value then costs the variance under 1.2e-4 of itself (6e-8 / fraction, doubled)."""


def _saved_stats(out: torch.Tensor, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per-channel mean and unbiased variance of a BatchNorm layer's input, as the layer saved them.

    In training mode ``native_batch_norm`` computes the batch mean and ``1/sqrt(var + eps)`` and
    autograd keeps both for the backward pass (``NativeBatchNormBackward0``'s saved results), so
    the snapshot reads them instead of reducing the input a second time, which cost about 2 ms
    per layer on the reference CNN. The mean is the kernel's own; the biased variance is
    ``1/invstd² − eps`` in float64. None where the output has no such node (no grad, eval
    mode, SyncBatchNorm, cuDNN, compiled), or where a channel's variance is so far below
    ``eps`` that float32 rounding would show (``SAVED_VAR_FLOOR``): ``_batch_stats`` then
    measures the input.
    """
    node = out.grad_fn
    if type(node).__name__ != "NativeBatchNormBackward0":
        return None
    try:
        if not node._saved_training:
            return None
        mean, invstd, eps = node._saved_result1, node._saved_result2, float(node._saved_eps)
    except (AttributeError, RuntimeError):  # another torch's node, or saved tensors already freed
        return None
    channels = inp.shape[1] if inp.dim() >= 2 else 0
    if mean.shape != (channels,) or invstd.shape != (channels,):
        return None
    total = invstd.double().pow(-2)  # var + eps
    var = total - eps
    if not bool((var >= SAVED_VAR_FLOOR * total).all()):
        return None
    n = inp.numel() // channels
    return mean.double(), _unbiased(var, n)


def _unbiased(var: torch.Tensor, n: int) -> torch.Tensor:
    """A float64 biased variance of ``n`` values made unbiased (NaN for a single value)."""
    return var * (n / (n - 1)) if n > 1 else torch.full_like(var, math.nan)


def _batch_stats(inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and unbiased variance of a BatchNorm layer's input, measured.

    Taken from the input itself on the snapshot step, with the kernel BatchNorm uses for
    its own batch statistics (``torch.batch_norm_update_stats``, given no running buffers
    to update), so they are exact at any momentum (``None`` included) and whether or not
    the layer tracks running statistics. That kernel is 4× faster on CPU than
    ``torch.var_mean`` over the strided (0, 2, 3) dimensions, which took most of a
    snapshot step's hook time on a BatchNorm CNN. It returns the biased variance; the
    unbiased one is ``var · n / (n − 1)``. Inputs the kernel does not take (an unusual
    dtype or device) fall back to ``torch.var_mean``.
    """
    dims = _unit_dims(inp) or (0,)
    x = inp.detach()
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    n = x.numel() // x.shape[1] if x.dim() >= 2 and x.shape[1] else x.numel()
    try:
        mean, var = torch.batch_norm_update_stats(x, None, None, 0.0)
        return mean.double(), _unbiased(var.double(), n)
    except (RuntimeError, NotImplementedError):
        var, mean = torch.var_mean(x, dim=dims, correction=1)
        return mean.double(), var.double()
