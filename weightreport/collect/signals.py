"""SIGTERM, as a scheduler sends it before preemption: save what is buffered, then end as before.

``TermHandler`` installs itself in front of whatever handler was there. On SIGTERM it
calls ``on_term`` (the collector flushes and marks the run ``interrupted``), puts the
earlier handler back and hands the signal on: to that handler when it is a Python
function (Lightning's, for example), else to the default action, which ends the
process as it would have ended without weightreport. The signal is never swallowed.

A signal that arrives while the collector is in the middle of one of its own calls
is held until the call ends (``busy``), so the flush never sees half-written state.
Nothing is installed off the main thread (Python allows handlers only there) or
where SIGTERM was ignored or handled outside Python.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable


class TermHandler:
    """A SIGTERM handler that runs ``on_term`` first, then the handler it replaced.

    Args:
        on_term: called once, with no arguments, when SIGTERM arrives.
    """

    def __init__(self, on_term: Callable[[], None]) -> None:
        self.on_term = on_term
        self.busy = False
        self.pending: tuple | None = None
        self._previous = None
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if previous is None or previous == signal.SIG_IGN:  # set outside Python, or ignored: leave it be
            return
        self._previous = previous
        signal.signal(signal.SIGTERM, self._handle)

    @property
    def installed(self) -> bool:
        """True while this handler is the process's SIGTERM handler."""
        return self._previous is not None and signal.getsignal(signal.SIGTERM) == self._handle

    def _handle(self, signum: int, frame) -> None:
        if self.busy:
            self.pending = (signum, frame)
            return
        self.fire(signum, frame)

    def fire(self, signum: int | None = None, frame=None) -> None:
        """Run ``on_term``, restore the earlier handler, and pass the signal on."""
        if signum is None:
            signum, frame = self.pending or (signal.SIGTERM, None)
        self.pending = None
        previous = self._previous
        try:
            self.on_term()
        finally:
            self.remove()
            if callable(previous):
                previous(signum, frame)
            elif previous is not None:  # SIG_DFL: end the process as the signal would have
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

    def remove(self) -> None:
        """Put the earlier handler back, if this one is still installed.

        When another handler was installed over this one, it stays, and this one keeps
        the handler it replaced, to pass the signal on should the newer one call it.
        """
        if self.installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
