"""Statistics and histograms of tensors, computed where the tensors live.

``describe(tensors, bins)`` is the whole job for one snapshot, with one batched host
transfer. Small tensors (up to ``SMALL`` elements: biases, norms, a small layer's
weights) travel to the host and are described there exactly, in float64
(``exact.py``); where no large tensor keeps the helper thread busy, it describes them
while the caller reads the host block. Large tensors are described where they live:
- on an accelerator (and on a CPU without numba) with torch ops that never wait for
  the host (``torch_ops.py``); their numbers join the small tensors' transfer;
- on the CPU with compiled kernels (``compiled.py``, ``kernels.py``): range and moments in one pass,
  the histogram with the 3σ, 6σ and zero counts in a second, and the IQR fences read
  off the histogram (a third pass only where a fence falls in an occupied bin).
  This thread describes the small tensors, then joins a helper thread in taking the
  large ones from one queue, largest first.

The maths for a large tensor ``x`` with ``n`` finite values:
- ``x`` is scaled by a power of two ``s`` (exact) so that powers cannot overflow and
  shifted by an estimate ``c`` of its mean; the sums ``S1..S4`` of the shifted values'
  powers are corrected for ``S1`` on the host in float64. On the CPU ``s`` and ``c``
  come from a sample (runs of consecutive values spread over the tensor), checked
  against the range afterwards (a second pass only where the sample missed the peak
  by more than 2**24).
- Histogram counts come from exact bin indices (see ``grid.py``) and are int64,
  never float32 (which stops counting at 2**24).
- Outliers are counted against ``mean ± k·std`` and the IQR fences exactly: the
  compiled path rounds each threshold toward the comparison's dtype (``compiled._outside``),
  the torch path compares in float64.
- Percentiles are interpolated from the histogram's cumulative counts, within one
  bin of the exact value; small tensors get exact ones.

Every path fills the summary columns of ``fields.SUMMARY`` through ``fields.summary``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from weightreport.stats import kernels
from weightreport.stats.columns import Columns
from weightreport.stats.compiled import _describe_compiled
from weightreport.stats.exact import SortedPieces, describe_array
from weightreport.stats.fields import Description
from weightreport.stats.openmp import rest_workers
from weightreport.stats.torch_ops import TorchDescription

SMALL = 16384
"""Tensors up to this many elements are described exactly on the host."""


def flat(t: torch.Tensor) -> torch.Tensor:
    """A detached 1-D float view or copy of ``t`` (half types widened to float32)."""
    t = t.detach()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    return t.reshape(-1)


def describe(
    tensors: Sequence[torch.Tensor], bins: int = 64, extras: Sequence[torch.Tensor] = (),
    distances: Mapping[int, tuple[np.ndarray, np.ndarray | None]] | None = None,
) -> tuple[list[Description], list[np.ndarray]]:
    """Statistics and a histogram for each tensor, with one batched host transfer.

    Args:
        tensors: tensors of any shape and floating dtype, on any devices.
        bins: histogram bins per tensor.
        extras: other tensors the caller needs on the host (norms, trajectory values,
            per-channel vectors); they ride along with the transfer.
        distances: see ``Batch``.

    Returns:
        One ``Description`` per tensor, in order, and each extra as a flat float64
        array, followed by each of ``distances``' ``‖x − prev‖², ‖prev‖², ‖x − init‖²``
        in its order (float64; NaN for a missing init).
    """
    return Batch(tensors, bins, distances).finish(extras)


class Batch:
    """``describe`` in two halves, so that the caller can prepare its extras meanwhile.

    The constructor starts the work that needs nothing more: on an accelerator the
    torch ops, on the CPU the helper thread's share of the compiled large tensors.
    ``finish`` makes the one host transfer, describes the small tensors, and joins
    the helper in taking the compiled tensors from one queue, largest first (the
    kernels release the GIL; whichever thread is free takes the next).

    Args:
        tensors: tensors of any shape and floating dtype, on any devices.
        bins: histogram bins per tensor.
        distances: tensor index → (previous values, initial values or None), float32
            arrays of its size, for large float32 tensors that take the compiled CPU
            path: their update norms are fused into its first pass, and the previous
            values then replaced by the tensor's.
    """

    def __init__(self, tensors: Sequence[torch.Tensor], bins: int = 64,
                 distances: Mapping[int, tuple[np.ndarray, np.ndarray | None]] | None = None) -> None:
        self.bins = bins
        self.distances = distances or {}
        sizes = [t.numel() for t in tensors]
        large = [i for i, n in enumerate(sizes) if n > SMALL]
        self.flats = flats = dict.fromkeys(range(len(sizes)))
        for i in large:
            flats[i] = flat(tensors[i])
        compiled = [i for i in large if _compiled(flats[i], bins)]
        self._queue = iter(sorted(compiled, key=lambda i: -sizes[i]))
        self._lock = threading.Lock()
        # The helper starts on the large tensors before the small ones are even flattened,
        # on a CPU that torch's idle OpenMP workers no longer spin on.
        self._helper = None
        if len(compiled) > 1 and kernels.can_share():
            rest_workers(sum(sizes[i] for i in compiled))
            self._helper = kernels.helper().submit(self._work)
        self.queued = {i: TorchDescription(flats[i], bins) for i in large if i not in compiled}
        self.small = [i for i, n in enumerate(sizes) if n <= SMALL]
        self._small_sizes = [sizes[i] for i in self.small]
        for i in self.small:
            flats[i] = _host_view(tensors[i])

    def _work(self) -> list[tuple[int, Description, np.ndarray | None]]:
        done = []
        while True:
            with self._lock:
                i = next(self._queue, None)
            if i is None:
                return done
            done.append((i, *_describe_compiled(self.flats[i], self.bins, self.distances.get(i))))

    def finish(self, extras: Sequence[torch.Tensor] = ()) -> tuple[list[Description], list[np.ndarray]]:
        """The descriptions and the extras' host values (see ``describe``)."""
        extra_values = self.host(extras)
        out, squares = self.join()
        return out.descriptions(), [*extra_values, *squares]

    def host(self, extras: Sequence[torch.Tensor] = ()) -> list[np.ndarray]:
        """The one host transfer; starts the small tensors' descriptions.

        Where the helper thread has no large tensors to take, it starts sorting and
        describing the small tensors here (``exact.SortedPieces``), while the caller goes
        on with what it reads from ``small_block``; ``join`` takes the rest.

        Returns:
            Each extra as a flat float64 array. ``small_block`` then holds the small
            tensors' values, in order, as one float64 array.
        """
        flats, bins = self.flats, self.bins
        extra_flats = [flat(e) for e in extras]
        # The one transfer: extras, small tensors, and every queued tensor's numbers.
        host = _to_host([*extra_flats, *(flats[i] for i in self.small),
                         *(q.values for q in self.queued.values())])
        sizes = self._small_sizes
        extra_values = []
        pos = 0
        for e in extra_flats:
            extra_values.append(host[pos : pos + e.numel()])
            pos += e.numel()
        self.small_block = host[pos : pos + sum(sizes)]
        self._host_numbers = host[pos + sum(sizes) :]
        self._pieces = SortedPieces(self.small_block, sizes, bins,
                                    share=self._helper is None and kernels.can_share())
        return extra_values

    def join(self) -> tuple[Columns, list[np.ndarray]]:
        """Every tensor's description, as columns; the compiled large ones described beside the helper.

        Returns:
            The columns, and each of ``distances``' three squares, in its order.
        """
        flats, bins = self.flats, self.bins
        small = self._pieces.columns()
        if len(self.small) == len(flats):  # every tensor is small: its columns are the batch's
            out = small
        else:
            out = Columns(len(flats), bins)
            out.take(self.small, small)
        pos = 0
        for i, q in self.queued.items():
            described = q.finish(self._host_numbers[pos : pos + q.values.numel()])
            # None: the device's grid loop gave up (float64 values a few ulps apart); on the host
            out.put(i, described or describe_array(flats[i].cpu().double().numpy(), bins))
            pos += q.values.numel()
        norms = {}
        for i, d, squares in [*self._work(), *(self._helper.result() if self._helper is not None else ())]:
            out.put(i, d)
            norms[i] = squares
        return out, [norms[i] for i in self.distances]


_CPU = torch.device("cpu")


def _compiled(x: torch.Tensor, bins: int) -> bool:
    """Whether a large tensor goes through the compiled CPU kernels (else ``torch_ops``)."""
    return x.device.type == "cpu" and kernels.AVAILABLE and bins <= kernels.MAX_BINS


def _host_view(t: torch.Tensor) -> torch.Tensor | np.ndarray:
    """A small tensor as ``_to_host`` takes it: a 1-D numpy view of a CPU tensor that numpy
    can hold, else ``flat(t)``.

    Half and float32 values widen to float64 exactly either way; a numpy view costs a
    third of a torch reshape, which counts for hundreds of small tensors.
    """
    if t.is_cpu and t.dtype in _NUMPY_FLOATS:
        return (t.detach() if t.requires_grad else t).numpy().reshape(-1)
    return flat(t)


_NUMPY_FLOATS = frozenset((torch.float16, torch.float32, torch.float64))


def _to_host(parts: Sequence[torch.Tensor | np.ndarray]) -> np.ndarray:
    """Concatenate detached 1-D float tensors (or numpy views, see ``_host_view``) as float64
    on the host, one transfer per device.

    On the CPU numpy concatenates and widens in one call (``torch.cat`` of dozens of
    small tensors cost ten times more).
    """
    if not parts:
        return np.empty(0)
    devices = {_CPU if isinstance(p, np.ndarray) else p.device for p in parts}
    if devices == {_CPU}:
        return np.concatenate([p if isinstance(p, np.ndarray) else p.numpy() for p in parts], dtype=np.float64)
    if len(devices) == 1:
        return torch.cat([p.double() for p in parts]).cpu().numpy()
    return np.concatenate([p if isinstance(p, np.ndarray) else p.cpu().numpy() for p in parts],
                          dtype=np.float64)  # model spread over devices


class _Workspace:
    """Scratch buffers kept between snapshots, so large temporaries are not re-faulted.

    Fresh multi-megabyte allocations cost a page fault per 4 KiB on first touch, which
    on the CPU outweighs the arithmetic itself.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple, torch.Tensor] = {}

    def get(self, name: str, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """A 1-D buffer with ``like``'s size and device, and ``dtype`` (default ``like``'s)."""
        dtype = dtype or like.dtype
        key = (name, like.device, dtype)
        buf = self._buffers.get(key)
        if buf is None or buf.numel() < like.numel():
            buf = torch.empty(like.numel(), dtype=dtype, device=like.device)
            self._buffers[key] = buf
        return buf[: like.numel()]


_WORKSPACES: dict[torch.device, _Workspace] = {}


def workspace(x: torch.Tensor) -> _Workspace:
    """The scratch buffers of ``x``'s device."""
    return _WORKSPACES.setdefault(x.device, _Workspace())
