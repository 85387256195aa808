"""How long this process has spent compiling weightreport's own kernels.

numba announces each compile with a ``"numba:compile"`` event, whose data names the
dispatcher that compiles; loading a kernel from numba's cache is no compile and sends none.
``watch`` registers one listener when ``kernels`` imports numba; it times the compiles of
the dispatchers ``kernels`` made (a kernel compiles the kernels it calls inside its own
compile: the outermost is timed) and ignores every other numba function in the process,
such as the user's own.
"""

from __future__ import annotations

from time import perf_counter

_clock = None


def watch(ours: set[int]) -> None:
    """Time the compiles of the dispatchers whose ``id`` is in ``ours`` (a set ``kernels`` keeps up to date)."""
    global _clock
    if _clock is not None:
        return
    from numba.core import event

    class Clock(event.Listener):
        def __init__(self) -> None:
            self.seconds, self._depth, self._since = 0.0, 0, 0.0

        def on_start(self, ev) -> None:
            if id(ev.data["dispatcher"]) in ours:
                if self._depth == 0:
                    self._since = perf_counter()
                self._depth += 1

        def on_end(self, ev) -> None:
            if id(ev.data["dispatcher"]) in ours and self._depth:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += perf_counter() - self._since

    _clock = Clock()
    event.register("numba:compile", _clock)


def seconds() -> float:
    """Seconds spent compiling the watched kernels so far; 0 before ``watch``."""
    return _clock.seconds if _clock is not None else 0.0
