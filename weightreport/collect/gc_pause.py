"""Python's cyclic garbage collector paused around the collector's own work."""

from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def collection_paused():
    """Python's cyclic garbage collector off for one snapshot, and back as it was.

    A snapshot makes thousands of short-lived containers (one description per tensor). Any
    still alive when a collection runs are promoted, and promotions are what start a full
    collection, which walks every object torch and numba made: 250 ms each, about once per
    60 snapshots of the 142-tensor model. Paused, they are freed by reference counting
    before the next collection can see them. Process-wide for the snapshot's few
    milliseconds; never turned on where it was off.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
