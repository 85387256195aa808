"""What the collector costs, and when its next snapshot is due.

``CostMeter`` adds up the collector's own time (its calls, and its hooks on snapshot
steps) and the wall time of the whole run; training's time is the rest. ``Cadence``
says which step is the next snapshot: every ``every`` steps, or, under a budget,
less often, so that the measured fraction of the run spent in the collector stays
under the budget.
"""

from __future__ import annotations

import math
from time import perf_counter

MAX_GROWTH = 4
"""Under a budget, the interval grows at most this many times per snapshot, so one slow
snapshot (a pause of the machine, say) cannot stop snapshots for a long stretch."""


class CostMeter:
    """The collector's own time against the run's wall time.

    ``start()`` and ``stop(t0)`` bracket each collector call; hook time is passed in when
    the figures are read, since the hooks keep their own clock.
    """

    def __init__(self) -> None:
        self.collector_s = 0.0
        self._first: float | None = None
        self.last: float | None = None
        """When the last collector call ended (training's time runs from there)."""

    @staticmethod
    def start() -> float:
        """The time a collector call starts."""
        return perf_counter()

    def stop(self, t0: float) -> float:
        """Count the call that started at ``t0``; returns its length in seconds."""
        now = perf_counter()
        if self._first is None:
            self._first = t0
        self.last = now
        spent = now - t0
        self.collector_s += spent
        return spent

    def figures(self, hooks_s: float = 0.0, compile_s: float = 0.0) -> dict:
        """``{"collector_s", "training_s", "fraction", "compile_s"}``: seconds in the collector
        (calls and hooks), the rest of the run's wall time, the collector's share of the whole,
        and the part of its seconds that compiled kernels (``compile_s``, a first use's cost)."""
        total = (self.last - self._first) if self._first is not None else 0.0
        collector = min(self.collector_s + hooks_s, total) if total > 0 else self.collector_s + hooks_s
        training = max(total - collector, 0.0)
        fraction = collector / total if total > 0 else 0.0
        return {"collector_s": round(collector, 6), "training_s": round(training, 6),
                "fraction": round(fraction, 6), "compile_s": round(min(compile_s, collector), 6)}


class Cadence:
    """The snapshot steps: multiples of ``every``, spaced further apart under a budget.

    Args:
        every: the shortest interval (and the only one without a budget).
        budget: the largest fraction of the run the collector may take, or None.
        step: the step the run starts (or resumes) at.
    """

    def __init__(self, every: int, budget: float | None, step: int = 0) -> None:
        self.every = every
        self.budget = budget
        self.interval = every
        self.changes: list[dict] = []
        """``{"step", "every"}`` for each change of interval, in order."""
        self.next = self._after(step)
        self._training_s = 0.0
        self._steps = 0

    def due(self, step: int) -> bool:
        """True when ``step`` is a snapshot step."""
        return step >= self.next

    def trained(self, seconds: float) -> None:
        """Count one step's training time (between two collector calls)."""
        self._training_s += seconds
        self._steps += 1

    def taken(self, step: int, snapshot_s: float) -> None:
        """A snapshot was taken at ``step`` and cost ``snapshot_s`` (compiling kernels left out:
        that is paid once); plan the next one.

        Under a budget, the interval becomes the smallest multiple of ``every`` for which
        ``snapshot_s / (interval × step time + snapshot_s)`` stays within the budget, at
        most ``MAX_GROWTH`` times the last one, and never below ``every``.
        """
        if self.budget is not None and self._steps:
            per_step = self._training_s / self._steps
            want = snapshot_s * (1.0 - self.budget) / (self.budget * per_step) if per_step > 0 else self.interval
            want = min(max(want, self.every), self.interval * MAX_GROWTH)
            interval = self.every * math.ceil(want / self.every - 1e-9)
            if interval != self.interval:
                self.interval = interval
                self.changes.append({"step": int(step), "every": int(interval)})
            self._training_s, self._steps = 0.0, 0
        self.next = self._after(step)

    def _after(self, step: int) -> int:
        """The first multiple of ``every`` at least ``interval`` after ``step``'s multiple."""
        return self.every * ((step + self.interval - self.every) // self.every + 1)
