"""When the collector writes, and what a failed write does: training never waits on a disk, or dies for one.

- Every ``flush_every`` snapshots, the buffered rows are written. Once training has started
  (``started``), a flush writes on a thread (``RunWriter.flush(background=True)``) while
  training goes on, and the next flush waits for it first. The constructor's flush and the
  last one (``close()``, SIGTERM) write on the caller's thread.
- A failed write (a full disk, a removed directory, lost permission) warns once, at the flush
  that learns of it (the next one, for a write on a thread) or at the last. Its rows stay
  buffered and every flush retries, on the caller's thread, until one succeeds.
- Beyond ``MAX_UNWRITTEN_FLUSHES × flush_every`` snapshots waiting, new ones are dropped and
  counted (``dropped``); the count is warned, and written to run.json, once writing works again.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from weightreport.runfmt.writer import RunWriter

MAX_UNWRITTEN_FLUSHES = 4
"""While writes fail, snapshots are kept in memory up to this many flushes' worth
(``MAX_UNWRITTEN_FLUSHES × flush_every`` snapshots); later ones are dropped and counted."""


class Flushes:
    """The collector's writes and their failures.

    Args:
        writer: the run's writer; None on ranks other than 0, which write nothing.
        path: the run directory, for the warnings.
        flush_every: snapshots between flushes.
        manifest: run.json's content at the time of a flush.
        on_bug: called with anything but an OSError that a flush raises (a bug in the writer),
            instead of raising it into the training loop.
    """

    def __init__(self, writer: RunWriter | None, path: Path, flush_every: int,
                 manifest: Callable[[], dict], on_bug: Callable[[Exception], None]) -> None:
        self.writer, self.path, self.flush_every, self.manifest = writer, path, flush_every, manifest
        self.on_bug = on_bug
        self.started = False  # set once the constructor's own writes are on disk
        self.unflushed = 0  # snapshots buffered, not yet handed to a write
        self.in_flight = 0  # snapshots a write on a thread is writing
        self.error: str | None = None  # why writes fail, while they do
        self.dropped = 0

    def room(self) -> bool:
        """Whether a new snapshot may be buffered. While writes fail and the buffer is full, one more
        flush is tried first; a snapshot refused is counted as dropped."""
        limit = MAX_UNWRITTEN_FLUSHES * self.flush_every
        if self.error is not None and self.unflushed >= limit:
            self.flush()
        if self.error is not None and self.unflushed >= limit:
            self.dropped += 1
            return False
        return True

    def added(self) -> None:
        """A snapshot was buffered: flush once ``flush_every`` wait."""
        self.unflushed += 1
        if self.unflushed >= self.flush_every:
            self.flush()

    def flush(self, final: bool = False) -> None:
        """Write what is buffered; an OSError warns (once) and leaves it for the next flush, and
        anything else goes to ``on_bug``."""
        if self.writer is None:  # only rank 0 writes
            self.unflushed = 0
            return
        background = self.started and not final and self.error is None
        try:
            self.writer.flush(self.manifest(), final=final, background=background)
        except OSError as exc:
            # State first, then the warnings: under `-W error` a warning raises.
            self.unflushed += self.in_flight  # a failed write's snapshots wait again
            self.in_flight = 0
            reason, first = exc.strerror or str(exc), self.error is None
            self.error = reason
            if first:
                warnings.warn(
                    f"weightreport cannot write to {self.path} ({reason}). Training goes on; up to "
                    f"{MAX_UNWRITTEN_FLUSHES * self.flush_every} snapshots wait in memory and every flush "
                    "retries; later snapshots are dropped and counted.", RuntimeWarning, stacklevel=5)
            if final:
                warnings.warn(
                    f"weightreport could not write its last {self.unflushed} snapshot(s) to {self.path} "
                    f"({reason}); they are lost, and the run there ends at its last flush"
                    + (f" ({self.dropped} snapshot(s) were dropped before)" if self.dropped else ""),
                    RuntimeWarning, stacklevel=5)
            return
        except Exception as exc:
            self.on_bug(exc)
            return
        # The write before this one succeeded; this one's snapshots are written, or on their way.
        self.in_flight, self.unflushed = (self.unflushed if background else 0), 0
        if self.error is not None:
            self.error = None
            warnings.warn(f"weightreport writes to {self.path} again; {self.dropped} snapshot(s) were "
                          "dropped while it could not (run.json: dropped_snapshots)", RuntimeWarning,
                          stacklevel=5)
