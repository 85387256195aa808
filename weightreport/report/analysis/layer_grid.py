"""Per-layer signals on a bounded layer × step grid, for the whole-network view.

A signal (update ratio, gradient norm, weight norm relative to its initial value,
module output std, dead or saturated fraction) is a ``tensor, step, value, bad`` frame
taken from the stats table; ``bad`` says that the tensor held NaN or Inf at that snapshot
(or that the value itself is infinite), so such a cell is drawn, never dropped.

The grid's columns are ``StepBins``: at most ``MAX_STEP_COLUMNS`` equal step ranges from
the first to the last snapshot (fewer for very many layers, so a chart stays at most
``MAX_CELLS`` cells); with no more snapshots than columns each snapshot has its own
column. A cell holds the value at the last snapshot in its range that has one, and is
bad when any snapshot in the range is.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd

from weightreport.report.analysis.finding import NEAR_ZERO_RMS
from weightreport.runfmt.calls import split_call

MAX_STEP_COLUMNS = 100
MAX_CELLS = 16_000
MIN_STEP_COLUMNS = 20
MAX_GROUPS = 24
WHOLE_BLOCK = 4
"""A module group up to this many times the mean row size stays one row (``row_blocks``)."""
SIGNAL_COLUMNS = ["tensor", "step", "value", "bad"]


@dataclass(frozen=True)
class StepBins:
    """``count`` equal step ranges covering ``first`` … ``last`` (integer arithmetic, exact).

    Step ``s`` falls in column ``(s - first) * count // (last - first + 1)``; column ``b``
    covers the steps from ``first + ceil(b * span / count)`` to one before the next
    column's first step, where ``span = last - first + 1``.
    """

    first: int
    last: int
    count: int

    @property
    def span(self) -> int:
        """The number of steps covered, ``last - first + 1``."""
        return self.last - self.first + 1

    def of(self, steps) -> np.ndarray:
        """The column of each step."""
        s = np.asarray(steps, dtype=np.int64)
        return (s - self.first) * self.count // self.span

    def start(self, b: int) -> int:
        """The first step column ``b`` covers."""
        return self.first + -(-b * self.span // self.count)

    def end(self, b: int) -> int:
        """The last step column ``b`` covers."""
        return self.start(b + 1) - 1


def step_bins(steps, rows: int = 1, limit: int = MAX_STEP_COLUMNS) -> StepBins:
    """The columns for snapshots at ``steps`` and a chart of ``rows`` layers.

    At most ``limit`` columns, and fewer (down to ``MIN_STEP_COLUMNS``) when ``rows``
    layers would make more than ``MAX_CELLS`` cells; never more columns than snapshots.
    """
    uniq = np.unique(np.asarray(steps, dtype=np.int64))
    if uniq.size == 0:
        return StepBins(0, 0, 1)
    cap = max(MIN_STEP_COLUMNS, MAX_CELLS // max(rows, 1))
    return StepBins(int(uniq[0]), int(uniq[-1]), int(max(1, min(limit, cap, uniq.size))))


def _frame(rows: pd.DataFrame, value: pd.Series) -> pd.DataFrame:
    """The signal frame of ``rows`` (stats rows) with ``value`` (aligned with them)."""
    v = value.to_numpy(dtype=float)
    counts = rows["nan_count"].fillna(0).to_numpy() + rows["inf_count"].fillna(0).to_numpy()
    bad = (counts > 0) | np.isinf(v)
    out = pd.DataFrame({"tensor": rows["tensor"].astype(str).to_numpy(), "step": rows["step"].to_numpy(np.int64),
                        "value": np.where(np.isinf(v), np.nan, v), "bad": bad})
    return out[out["value"].notna() | out["bad"]].reset_index(drop=True)


def _scaled(rows: pd.DataFrame) -> pd.Series:
    """Per row: the tensor's RMS reached ``NEAR_ZERO_RMS`` at this snapshot or an earlier one.

    ``finding.scaled`` for every tensor at once (rows must be sorted by tensor and step).
    """
    rms = rows["norm"].to_numpy(dtype=float) / np.sqrt(np.maximum(rows["numel"].to_numpy(dtype=float), 1.0))
    return pd.Series(rms >= NEAR_ZERO_RMS, index=rows.index).groupby(rows["tensor"].to_numpy()).cummax()


def update_ratio(params: pd.DataFrame) -> pd.DataFrame:
    """‖w_t − w_prev‖ / ‖w_prev‖, counted once the previous snapshot's RMS reached ``NEAR_ZERO_RMS``."""
    if params.empty:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    p = params.sort_values(["tensor", "step"], kind="stable")
    prev = _scaled(p).groupby(p["tensor"].to_numpy()).shift(1, fill_value=False).astype(bool)
    return _frame(p, p["update_ratio"].where(prev))


def grad_norm(grads: pd.DataFrame) -> pd.DataFrame:
    """The gradient's L2 norm."""
    return _frame(grads, grads["norm"]) if not grads.empty else pd.DataFrame(columns=SIGNAL_COLUMNS)


def weight_norm(params: pd.DataFrame) -> pd.DataFrame:
    """‖w_t‖ / ‖w₀‖, where w₀ is the first snapshot whose RMS reached ``NEAR_ZERO_RMS`` (blank before it)."""
    if params.empty:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    p = params.sort_values(["tensor", "step"], kind="stable")
    norm = p["norm"].where(_scaled(p) & np.isfinite(p["norm"]))
    ref = norm.groupby(p["tensor"].to_numpy()).transform("first")
    return _frame(p, norm / ref)


def output_std(acts: pd.DataFrame) -> pd.DataFrame:
    """The standard deviation of each module's output (``activation`` and ``bn_output`` rows)."""
    return _frame(acts, acts["std"]) if not acts.empty else pd.DataFrame(columns=SIGNAL_COLUMNS)


def dead_fraction(acts: pd.DataFrame) -> pd.DataFrame:
    """The fraction of a module's units that are dead (ReLU-like) or saturated (tanh/sigmoid)."""
    if acts.empty:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    a = acts[(acts["units"].fillna(0) > 0) & (acts["dead_units"].notna() | acts["saturated_units"].notna())]
    frac = (a["dead_units"].fillna(0) + a["saturated_units"].fillna(0)) / a["units"]
    return _frame(a, frac)


def grid(signal: pd.DataFrame, bins: StepBins, reduce: str = "last", keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """``tensor, bin, value, bad`` (and ``keep``): per tensor and column, one value and whether any snapshot was bad.

    Args:
        signal: ``tensor, step, value, bad`` and the columns named in ``keep``.
        bins: the step columns.
        reduce: which value a column holds: ``last`` (at the last snapshot in its range that
            has one) or ``max`` (the largest, so that a peak is never hidden by a later value).
        keep: columns taken from the row that gave the value (None where the cell has no value).
    """
    if signal.empty:
        return pd.DataFrame(columns=["tensor", "bin", "value", "bad", *keep])
    df = signal.assign(bin=bins.of(signal["step"])).sort_values(["tensor", "bin", "step"], kind="stable")
    keys = ["tensor", "bin"]
    bad = df.groupby(keys, sort=True)["bad"].any()
    valued = df.dropna(subset=["value"])
    if reduce == "max":
        chosen = valued.loc[valued.groupby(keys, sort=True)["value"].idxmax()]
    else:
        chosen = valued.groupby(keys, sort=True).tail(1)
    value = chosen.set_index(keys)[["value", *keep]]
    out = pd.concat([value, bad], axis=1).reset_index()
    return out[["tensor", "bin", "value", "bad", *keep]]


def last_snapshot(signal: pd.DataFrame) -> pd.DataFrame:
    """``tensor, step, value, bad`` at each tensor's last snapshot in ``signal``."""
    if signal.empty:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    last = signal.groupby("tensor")["step"].transform("max")
    return signal[signal["step"] == last].sort_values("tensor").reset_index(drop=True)


def module_path(name: str, params: set[str]) -> list[str]:
    """The module path of a row: a parameter's owning module, or the module itself (that of a
    reused module's later call, ``relu#2``, is its module's, so the calls group together)."""
    parts = (name if name in params else split_call(name)[0]).split(".")
    return parts[:-1] if name in params and len(parts) > 1 else parts


@dataclass(frozen=True)
class Group:
    """A run of consecutive rows (``start`` … ``end`` − 1) under one module path ``label`` ("" for the whole model).

    ``path`` is the module path the rows share when the label is not one: a range of
    numbered blocks (``encoder.layer.0–2``) shares ``encoder.layer``.
    """

    label: str
    start: int
    end: int
    path: str | None = None

    @property
    def shared(self) -> str:
        """The module path every row of the group is under."""
        return self.label if self.path is None else self.path


def module_groups(names: list[str], params: set[str], limit: int = MAX_GROUPS) -> list[Group]:
    """Consecutive runs of ``names`` (in model order) under a common module path, at most ``limit``.

    Starting from the whole model, every group larger than the average size that
    ``limit`` groups would have is split by the next component of its rows' module paths,
    all in one round, for as long as the total stays within ``limit``; a group whose rows
    all share that component takes the longer label. Sibling blocks are so split alike:
    a BERT keeps its embeddings as one group and splits its encoder into layers, a
    ResNet into blocks.
    """
    if not names:
        return []
    paths = [module_path(n, params) for n in names]
    target = len(paths) / max(limit, 1)
    groups = [(0, 0, len(paths))]  # (depth, start, end): rows start … end − 1 share paths[:depth]
    while True:
        new, split = [], False
        for depth, lo, hi in groups:
            if hi - lo > target and any(len(p) > depth for p in paths[lo:hi]):
                new += [(depth + 1, lo + g.start, lo + g.end) for g in _runs(paths[lo:hi], depth + 1)]
                split = True
            else:
                new.append((depth, lo, hi))
        if not split or len(new) > limit:
            break
        groups = new
    return _spread(groups, paths, target, limit)


def _spread(groups: list[tuple[int, int, int]], paths: list[list[str]], target: float, limit: int) -> list[Group]:
    """The groups labelled; the groups still larger than ``target`` whose children are numbered
    blocks that would not all fit are cut into runs of consecutive blocks (``encoder.layer.0–5``),
    sharing the groups left. (A group of named children, such as a BERT layer's attention,
    intermediate and output, stays whole: a range of names would read worse than its module.)

    Without this a 24-layer encoder under a limit of 21 groups stayed one group labelled
    ``encoder.layer``, which tells a reader nothing of where a row is.
    """
    oversized = {i for i, (depth, lo, hi) in enumerate(groups)
                 if hi - lo > target and _numbered(_runs(paths[lo:hi], depth + 1))}
    pieces = (limit - len(groups)) // max(len(oversized), 1) + 1
    out = []
    for i, (depth, lo, hi) in enumerate(groups):
        if i not in oversized or pieces < 2:
            out.append(Group(".".join(paths[lo][:depth]), lo, hi))  # "": the whole model
            continue
        children = _runs(paths[lo:hi], depth + 1)
        size = -(-len(children) // pieces)  # equal runs read best: 0–1, 2–3, …
        for a in range(0, len(children), size):
            first, last = children[a], children[min(a + size, len(children)) - 1]
            label = first.label if first is last else _range_label(first.label, last.label)
            out.append(Group(label, lo + first.start, lo + last.end, None if first is last else ".".join(
                paths[lo][:depth])))
    return out


def _numbered(children: list[Group]) -> bool:
    """True for two or more children that are numbered blocks (``layer.0``, ``layer.1``, …)."""
    return len(children) > 1 and all(g.label.rpartition(".")[2].isdigit() for g in children)


def _range_label(first: str, last: str) -> str:
    """``encoder.layer.0–5`` for children ``encoder.layer.0`` … ``encoder.layer.5``; else ``a … b``."""
    head, _, tail = first.rpartition(".")
    head2, _, tail2 = last.rpartition(".")
    if head == head2 and head:
        return f"{head}.{tail}–{tail2}"
    return f"{first} … {last}"


def row_blocks(names: list[str], params: set[str], limit: int) -> list[Group]:
    """At most ``limit`` runs of consecutive ``names`` (model order) to draw as one row each.

    ``module_groups`` first, so that a row is a module where it can be. A group larger than
    both ``WHOLE_BLOCK`` times the mean row size (``len(names) / limit``) and what the rows
    left over allow is then cut into equal consecutive chunks (labelled by their first and
    last name): a flat model (``layers.0`` … ``layers.499``) still gets many rows, not one,
    while an attention block of eight tensors stays one row. With no more names than
    ``limit``, every name is its own row.
    """
    if len(names) <= limit:
        return [Group(n, i, i + 1) for i, n in enumerate(names)]
    groups = module_groups(names, params, limit)
    spare = limit - len(groups)
    if spare <= 0:
        return groups
    # Chunks of at most ``size`` replace a group; then the rows total at most
    # len(groups) + len(names) / size ≤ limit.
    size = max(-(-len(names) // spare), WHOLE_BLOCK * -(-len(names) // limit))
    out = []
    for g in groups:
        n = g.end - g.start
        if n <= size:
            out.append(g)
            continue
        cuts = np.linspace(g.start, g.end, -(-n // size) + 1).round().astype(int)
        out += [Group(f"{names[a]} … {names[b - 1]}" if b - a > 1 else names[a], a, b)
                for a, b in pairwise(cuts.tolist())]
    return out


def column_labels(bins: StepBins, steps) -> list[dict]:
    """Per column ``b``: ``steps``, its one snapshot's step, or the range of steps it covers."""
    uniq = np.unique(np.asarray(steps, dtype=np.int64))
    per = np.bincount(bins.of(uniq), minlength=bins.count)
    out = []
    for b in range(bins.count):
        one = uniq[bins.of(uniq) == b] if per[b] == 1 else None
        label = str(int(one[0])) if one is not None else f"{bins.start(b)}–{bins.end(b)}"
        out.append({"b": b, "steps": label})
    return out


def _runs(paths: list[list[str]], depth: int) -> list[Group]:
    out: list[Group] = []
    for i, p in enumerate(paths):
        label = ".".join(p[:depth]) or "(model)"
        if out and out[-1].label == label:
            out[-1] = Group(label, out[-1].start, i + 1)
        else:
            out.append(Group(label, i, i + 1))
    return out
