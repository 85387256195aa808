"""One snapshot: gather the tensors, describe them in one go, and lay out table rows.

In one process, everything reaches the host through one ``stats.Batch`` (one batched
transfer; on the CPU the large tensors start on the helper thread while this one
gathers the extras, and the update norms of large float32 weights are fused into
their first pass). Under
torch.distributed every rank takes part: sharded parameters (FSDP2) and each rank's
activations are described as wholes by ``stats.SplitStats``, whose one
collective per snapshot also carries the per-parameter norms, trajectory values,
activation sizes and per-unit signals to be summed or maxed. The exact outlier
counts and small tensors of a snapshot ride on the next snapshot's collective, so
there ``take`` returns the rows of the snapshot before, and ``finish`` those of the
last. Only rank 0 gets rows back.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from weightreport.collect import distributed as dist
from weightreport.collect.hooks import Captured
from weightreport.collect.rows import stats_tables
from weightreport.collect.small_params import SmallParams
from weightreport.runfmt.blocks import Block
from weightreport.runfmt.calls import split_call
from weightreport.stats import SMALL, Batch, SplitStats, kernels, workspace
from weightreport.stats.columns import Columns

_BN_COLUMNS = ("batch_mean", "batch_var", "running_mean", "running_var", "weight", "bias")


class SnapshotTaker:
    """Turns the model's current state into rows for every table.

    It keeps two copies of the watched parameters (their local pieces, under FSDP2)
    on their device: the weights at the previous snapshot, for the update ratio, and
    at initialisation, for the distance from it.

    Args:
        params: (qualified name, parameter) pairs.
        trajectories: name → flat indices whose exact values are recorded.
        init: name → the parameter's initial value (its local piece, any device).
        bins: histogram bins.
        gradients: whether to record gradients.
    """

    def __init__(self, params, trajectories, init, *, bins: int, gradients: bool) -> None:
        self.params = params
        self.bins = bins
        self.gradients = gradients
        self._traj = {n: idx for n, idx in trajectories.items() if idx}
        self._traj_t: dict[str, torch.Tensor] = {}
        self._traj_np: dict[str, np.ndarray] = {}
        self._init = {}
        for n, p in params:
            if n in init:
                piece = dist.local_piece(p.detach())[0]
                self._init[n] = init[n].to(piece.device, torch.float32).reshape(-1)
        self._prev: dict[str, torch.Tensor] | None = None
        self._prev_np: dict[str, np.ndarray] | None = None  # numpy views of the CPU buffers
        self._init_np: dict[str, np.ndarray] = {}
        self._traj_columns: dict[tuple, tuple] = {}  # the trajectories table's fixed columns
        self._modules: dict[str, nn.Module] | None = None
        self._split: SplitStats | None = None  # under torch.distributed
        self._small: SmallParams | None = None  # in one process

    def trajectory_manifest(self) -> dict[str, list[int]]:
        """Name → recorded flat indices, for the manifest."""
        return dict(self._traj)

    def take(self, step: int, model: nn.Module, captured: dict[str, Captured],
             watched: list[tuple[str, bool]] = ()) -> dict[str, list]:
        """Describe everything at ``step``; rows per table on rank 0, {} on other ranks.

        Under torch.distributed the rows are those of the previous snapshot (none at
        the first): this one's come with the next ``take`` or with ``finish``.

        Args:
            step: the step number written into every row.
            model: the (unwrapped) model, for BatchNorm buffers.
            captured: what the activation hooks kept for this snapshot, by call name
                (``runfmt.calls``: a reused module's later calls are ``<module>#<k>``).
            watched: every hooked module and the later calls seen, so that all ranks pass
                the same list (``ActivationCapture.listed``).
        """
        spread = dist.is_distributed()
        rank = torch.distributed.get_rank() if spread else 0
        # Each parameter's local piece, once: for a Partial DTensor it costs a collective.
        local = {name: dist.local_piece(p.detach()) for name, p in self.params}
        entries = self._entries(local, captured, watched if spread else None)
        if not spread:
            with kernels.quick_handoffs():
                return self._take_here(step, model, captured, local, entries)
        sums, maxes, mins, own = [], [], [], []
        layout = self._extras(model, local, captured, entries, rank, spread, sums, maxes, mins, own)
        units = self._units(captured)
        # The sums and maxima ride on the statistics' collective.
        if self._split is None:
            self._split = SplitStats(self.bins)
        context: dict = {}
        done, sums, merged = self._split.exchange(
            [e[2] for e in entries], [e[3] for e in entries], sums,
            [*maxes, *(-m for m in mins)], context)  # a min is the max of the negated values
        maxes, mins = merged[: len(maxes)], [-m for m in merged[len(maxes):]]
        values = [*sums, *maxes, *mins, *(t.double().cpu().numpy().reshape(-1) for t in own)]
        self._remember(local)
        context.update(step=step, entries=[(*e[:2], None, *e[3:]) for e in entries],
                       values=dict(zip(layout, values, strict=True)), units=units)
        return self._rows_of(done)

    def _take_here(self, step, model, captured, local, entries) -> dict[str, list]:
        """``take`` in one process: one ``Batch``, started before the extras are gathered.

        The small parameters' update norms and trajectory values come from the host
        block (``SmallParams``). On the CPU the update norms of large float32 weights
        are fused into their statistics' first pass (``_fused``). At the first snapshot
        the previous weights are these ones, so that the norms take the same compiled
        kernels as later (torch's parallel ops beside the kernels' helper thread cost the
        collector's first snapshot a tenth of a second on a 2.4M-parameter CNN); its
        squares are then read as the first snapshot's: ``‖w‖²``, NaN (no previous
        weights), ``‖w − w₀‖²``.
        """
        first = self._prev is None and kernels.AVAILABLE
        if first:
            self._remember(local)
        if self._small is None:
            self._small = SmallParams([(e[0], e[4]) for e in entries if e[1] == "param" and e[4] <= SMALL],
                                      self._init, self._traj)
        small = self._small.members
        fused = self._fused(entries)
        batch = Batch([e[2] for e in entries], self.bins, fused)  # starts the large tensors
        here = self._host_values(local, {entries[i][0] for i in fused}, small)
        sums, maxes, mins, own = [], [], [], []
        elsewhere = set(here) | small  # their norms and trajectory values are not torch's
        layout = self._extras(model, local, captured, entries, 0, False, sums, maxes, mins, own,
                              skip_norms=elsewhere, skip_trajectories=elsewhere)
        values = batch.host([*sums, *maxes, *mins, *own])
        values = dict(zip(layout, values, strict=True))
        for found in here.values():
            values.update(found)
        values.update(self._small.values(batch.small_block))
        units = self._units(captured)
        columns, squares = batch.join()
        values.update(zip([("norms", entries[i][0]) for i in fused], squares, strict=True))
        if first:
            for name, _p in self.params:
                if name in small:  # already as a first snapshot's
                    continue
                _diff, prev, dist0 = values[("norms", name)].tolist()
                values[("norms", name)] = np.array([prev, math.nan, dist0])
        self._remember(local)
        return self._tables(step, entries, columns, values, units)

    @staticmethod
    def _units(captured) -> dict[str, tuple]:
        """Module → (mode, reach) of the activations whose dead or saturated units are counted."""
        return {name: (cap.units[0], cap.units[2]) for name, cap in captured.items() if cap.units is not None}

    def finish(self) -> dict[str, list]:
        """Rows of the snapshot still waiting for its counts (torch.distributed: one collective)."""
        return self._rows_of(self._split.finish()) if self._split is not None else {}

    def abandon(self) -> dict[str, list]:
        """The waiting snapshot's rows that need no other rank, for a run that failed.

        Makes no collective: after an exception the other ranks may never make theirs.
        The rows of split tensors (sharded parameters, activations) are left out.
        """
        return self._rows_of(self._split.abandon()) if self._split is not None else {}

    def _rows_of(self, done) -> dict[str, list]:
        if done is None or done[1] is None:
            return {}
        context, descriptions = done
        return self._rows(context["step"], context["entries"], descriptions, context["values"],
                          context["units"])

    def _fused(self, entries) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
        """Entry index → (previous, initial values) of the weights whose update norms
        ``describe`` fuses into its compiled pass: large float32 CPU ones, after the first snapshot."""
        if self._prev is None or not kernels.AVAILABLE or self.bins > kernels.MAX_BINS:
            return {}
        if self._prev_np is None:  # the buffers live as long as this taker: view them once
            self._prev_np = {n: t.numpy() for n, t in self._prev.items() if t.device.type == "cpu"}
            self._init_np = {n: t.numpy() for n, t in self._init.items() if t.device.type == "cpu"}
        fused = {}
        for i, (name, kind, piece, _sharded, numel) in enumerate(entries):
            if kind != "param":
                break  # the parameters come first
            if (numel > SMALL and piece.dtype == torch.float32 and piece.device.type == "cpu"
                    and name in self._prev_np and piece.numel() == numel):
                fused[i] = (self._prev_np[name], self._init_np.get(name))
        return fused

    def _host_values(self, local, fused, small) -> dict[str, dict]:
        """Update norms and trajectory values of the CPU float32 weights, in numpy, after the first snapshot.

        The same kernel and the same elements as ``_norms`` and ``_trajectory``, without
        a torch tensor for each. The ``fused`` weights' norms come from the ``Batch``;
        the ``small`` ones are left to ``SmallParams``.

        Returns:
            Parameter name → its {("norms" or "trajectory", name): float64 array}.
        """
        out: dict[str, dict] = {}
        if self._prev_np is None:
            return out
        for name, _p in self.params:
            w = local[name][0]
            if name in small or w.device.type != "cpu" or w.dtype != torch.float32 or name not in self._prev_np:
                continue
            a = w.numpy().reshape(-1)  # a numpy reshape costs a tenth of a torch one
            found = {}
            if name not in fused:
                found[("norms", name)] = kernels.update_squares(a, self._prev_np[name], self._init_np.get(name))
            if name in self._traj:
                idx = self._traj_np.get(name)
                if idx is None:
                    idx = self._traj_np[name] = np.asarray(self._traj[name], dtype=np.int64)
                found[("trajectory", name)] = a[idx].astype(np.float64)
            out[name] = found
        return out

    def _entries(self, local, captured, watched):
        """(name, kind, piece, sharded, numel) of every tensor to describe, in a fixed order."""
        entries = []
        for name, p in self.params:
            entries.append((name, "param", *local[name], p.numel()))
        if self.gradients:
            for name, p in self.params:
                if p.grad is not None:
                    entries.append((name, "grad", *dist.local_piece(p.grad), p.numel()))
        if watched is None:
            for name, cap in captured.items():
                for kind, (sample, numel) in cap.samples.items():
                    entries.append((name, kind, sample, False, numel))
            return entries
        for name, is_bn in watched:  # every rank lists every module, captured or not
            cap = captured.get(name)
            for kind in ("bn_input", "bn_output") if is_bn else ("activation",):
                sample, numel = cap.samples[kind] if cap and kind in cap.samples else (
                    torch.zeros(0), 0)
                entries.append((name, kind, sample, True, numel))
        return entries

    def _extras(self, model, local, captured, entries, rank, spread, sums, maxes, mins, own,
                skip_norms=frozenset(), skip_trajectories=frozenset()):
        """Fill the lists of tensors to merge by sum, max, min, or keep as rank 0's own.

        Args:
            skip_norms: parameters whose norms are being computed elsewhere.
            skip_trajectories: parameters whose trajectory values are taken elsewhere.

        Returns:
            One (what, name) key per tensor, in the order sums, maxes, mins, own.
        """
        keys: dict[str, list] = {"sum": [], "max": [], "min": [], "own": []}
        for name, p in self.params:
            if name in skip_norms and (name in skip_trajectories or name not in self._traj):
                continue
            w, sharded = local[name]
            w = w.float().reshape(-1)
            counts = sharded or rank == 0  # a replica counts once, on rank 0
            if name not in skip_norms:
                squares = self._norms(name, w)
                sums.append(squares if counts else torch.zeros_like(squares))
                keys["sum"].append(("norms", name))
            if name in self._traj and name not in skip_trajectories:
                sums.append(self._trajectory(name, p, w, sharded, counts))
                keys["sum"].append(("trajectory", name))
        if spread:
            for name, kind, piece, _sharded, numel in entries:
                if kind in ("activation", "bn_input", "bn_output"):
                    sums.append(torch.tensor([float(numel)], device=piece.device))
                    keys["sum"].append(("numel", f"{kind}:{name}"))
        for name, cap in captured.items():
            if cap.units is not None:
                mode, signal, _reach = cap.units
                (maxes if mode == "dead" else mins).append(signal)
                keys["max" if mode == "dead" else "min"].append(("units", name))
        if any(cap.bn_batch is not None for cap in captured.values()):
            if self._modules is None:
                self._modules = dict(model.named_modules())
            for name, cap in captured.items():
                module = self._modules.get(split_call(name, self._modules)[0])  # a later call: its module's
                if cap.bn_batch is not None and module is not None:
                    own.append(_bn_vectors(module, cap.bn_batch))
                    keys["own"].append(("bn", name))
                    if spread and not isinstance(module, nn.SyncBatchNorm):  # Sync's are global
                        sums.append(_bn_moment_sums(cap.bn_batch, cap.bn_count))
                        keys["sum"].append(("bn_batch", name))
        return [*keys["sum"], *keys["max"], *keys["min"], *keys["own"]]

    def _trajectory(self, name, p, w, sharded, counts) -> torch.Tensor:
        """The recorded elements' values (zeros where another rank owns them)."""
        idx = self._traj_t.get(name)
        if idx is None or idx.device != w.device:
            idx = torch.tensor(self._traj[name], dtype=torch.long, device=w.device)
            self._traj_t[name] = idx
        if not sharded:
            values = w.reshape(-1).index_select(0, idx).double()
            return values if counts else torch.zeros_like(values)
        start = dist.global_offset(p)
        if start is None:  # not sharded by rows: assemble the whole tensor (a collective)
            whole = p.detach().full_tensor().reshape(-1).index_select(0, idx).double()
            return whole if counts and torch.distributed.get_rank() == 0 else torch.zeros_like(whole)
        local = idx - start
        mine = (local >= 0) & (local < w.numel())
        values = torch.zeros(idx.numel(), dtype=torch.float64, device=w.device)
        if w.numel():
            values[mine] = w.reshape(-1)[local[mine]].double()
        return values

    def _rows(self, step, entries, descriptions, values, units):
        """Rows per table; ``units`` maps a module to its (mode, reach) for dead/saturated units.

        ``descriptions`` holds None for a split tensor of an abandoned snapshot: it has no row.
        """
        missing = np.array([d is None for d in descriptions], bool)
        columns = Columns.of([d for d in descriptions if d is not None], self.bins)
        if missing.any():
            whole = Columns(len(descriptions), self.bins)
            whole.take(np.flatnonzero(~missing), columns)
            columns = whole
        return self._tables(step, entries, columns, values, units, missing)

    def _tables(self, step, entries, columns, values, units, missing=None) -> dict[str, list]:
        """The tables of one snapshot from its tensors' descriptions (``Columns``) and its values."""
        tables: dict = stats_tables(step, entries, columns, values, units, missing)
        traj = [(name, values[("trajectory", name)]) for name, _ in self.params
                if ("trajectory", name) in values]  # in the parameters' order, wherever taken
        if traj:
            tables["trajectories"] = self._trajectory_table(step, traj)
        bn = [(name, _global_batch(vec, values.get(("bn_batch", name))))
              for (what, name), vec in values.items() if what == "bn"]
        if bn:
            tables["batchnorm"] = _batchnorm_table(step, bn)
        return tables

    def _trajectory_table(self, step: int, traj: list[tuple[str, np.ndarray]]) -> Block:
        """The trajectories table's rows, one per recorded element, as columns."""
        names = tuple(name for name, _ in traj)
        fixed = self._traj_columns.get(names)
        if fixed is None:  # the same every snapshot: built once
            sizes = [len(vals) for _, vals in traj]
            fixed = ([name for name, n in zip(names, sizes, strict=True) for _ in range(n)],
                     np.concatenate([self._traj[name] for name in names]).astype(np.int64))
            self._traj_columns = {names: fixed}
        tensors, indices = fixed
        return Block({"step": np.full(len(indices), step, dtype=np.int64), "tensor": tensors, "index": indices,
                      "value": np.concatenate([vals for _, vals in traj]).astype(np.float64)})

    def _compiled(self, name: str, w: torch.Tensor) -> bool:
        """Whether ``_norms`` of this parameter runs the compiled kernel."""
        return (self._prev is not None and name in self._prev and w.device.type == "cpu"
                and kernels.AVAILABLE)

    def _norms(self, name: str, w: torch.Tensor) -> torch.Tensor:
        """‖w − prev‖², ‖prev‖², ‖w − w₀‖² (float64, NaN where unknown); then prev := w."""
        prev = self._prev.get(name) if self._prev is not None else None
        ref = self._init.get(name)
        if self._compiled(name, w):  # and prev := w
            return torch.from_numpy(kernels.update_squares(w.numpy(), prev.numpy(),
                                                           None if ref is None else ref.numpy()))
        squares = torch.stack([_sq_diff(w, prev), _sq_diff(prev, None), _sq_diff(w, ref)])
        if prev is not None:
            prev.copy_(w)
        return squares

    def _remember(self, local) -> None:
        """After the first snapshot, keep its weights (local pieces) as the previous ones."""
        if self._prev is None:
            self._prev = {n: piece.reshape(-1).float().clone() for n, (piece, _sharded) in local.items()}


def _sq_diff(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor:
    """‖a − b‖² (or ‖a‖² when b is None) in float64; NaN when a is missing.

    Squares rather than norms, so that pieces can be summed across ranks. The
    difference goes into a reused scratch buffer: fresh multi-megabyte temporaries
    cost more in page faults than the arithmetic.
    """
    if a is None:
        return torch.tensor(float("nan"), dtype=torch.float64)
    if b is not None:
        a = torch.sub(a, b.reshape(-1), out=workspace(a).get("diff", a))
    return torch.dot(a, a).double() if a.numel() else torch.zeros((), dtype=torch.float64, device=a.device)


def _batchnorm_table(step: int, layers: list[tuple[str, np.ndarray]]) -> Block:
    """The batchnorm table's rows, one per channel, as columns (NaN → null)."""
    matrices = [vec.reshape(len(_BN_COLUMNS), -1) for _, vec in layers]
    sizes = [m.shape[1] for m in matrices]
    values = np.concatenate(matrices, axis=1)
    columns = {
        "step": np.full(sum(sizes), step, dtype=np.int64),
        "module": [name for (name, _), n in zip(layers, sizes, strict=True) for _ in range(n)],
        "channel": np.concatenate([np.arange(n, dtype=np.int64) for n in sizes]),
    }
    nulls = {}
    for j, key in enumerate(_BN_COLUMNS):
        columns[key], nulls[key] = values[j], np.isnan(values[j])
    return Block(columns, nulls)


def _bn_moment_sums(batch: tuple[torch.Tensor, torch.Tensor], count: int) -> torch.Tensor:
    """Per channel: n, Σx and Σx² of this rank's BatchNorm input, for summing over ranks."""
    mean, var = batch
    n = torch.full_like(mean, float(count))
    return torch.cat([n, n * mean, (n - 1) * var + n * mean * mean])


def _global_batch(vec: np.ndarray, sums: np.ndarray | None) -> np.ndarray:
    """Rank 0's BatchNorm vector with the batch mean and unbiased var of the global batch."""
    if sums is None:
        return vec
    n, s1, s2 = sums.reshape(3, -1)
    out = vec.reshape(len(_BN_COLUMNS), -1).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s1 / n
        out[0] = mean
        out[1] = np.maximum(s2 - n * mean * mean, 0.0) / (n - 1)
    return out.reshape(-1)


def _bn_vectors(module: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Batch mean and var, running mean and var, gamma and beta, one channel per column."""
    channels = batch[0].numel()
    vectors = [*batch]
    for attr in _BN_COLUMNS[2:]:
        value = getattr(module, attr, None)
        if value is None:
            value = torch.full((channels,), float("nan"), device=batch[0].device)
        vectors.append(value.detach().double().reshape(-1))
    return torch.cat(vectors)
