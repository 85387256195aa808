"""torch's idle OpenMP workers put to rest before the compiled kernels share the CPU.

After a parallel torch op (the optimizer's step, for one) each of torch's OpenMP
workers spins for some milliseconds, waiting for the next parallel region. The
kernels' helper thread (``kernels.helper``) starts right then, on a CPU where a
worker is still spinning, and gets half of it: on the reference CNN, 2.5 ms of the
helper's first 5 ms went to the spin. ``rest_workers`` releases the calling thread's
workers with OpenMP 5.0's ``omp_pause_resource_all(omp_pause_soft)``: GNU's libgomp
(torch's on Linux) ends them at once, and the settings (the number of threads among
them) are kept; a soft pause lets other runtimes release them as they see fit.
Where the runtime lacks the call (before OpenMP 5.0) nothing is done. torch's next
parallel region starts its workers again, once, in a fraction of a millisecond.

Measured on the reference CNN (two threads): ``wr.step()`` right after a real step took
7.6 ms with the call (its 0.2 ms included) against 8.7 ms without, and the next
training step was no slower. 2,000 pauses, one after each step of a convolution and
MKL matmul model, left its memory and its step time unchanged.
"""

from __future__ import annotations

import ctypes
import functools

import torch

_SOFT = 1
"""``omp_pause_soft``: resources are released, the runtime's settings kept."""

WORTH_IT = 1 << 20
"""Values of kernel work from which a release pays. It costs about 0.3 ms (0.2 ms for the
call, the rest when torch starts its workers again): the demo's CNN, 65k values a snapshot,
lost that much a snapshot (its collector 0.37–0.38 s against 0.34–0.36 s in all), while the
reference CNN's 4.8M values gained 1.1 ms. Where between the two it breaks even was not
measured; 1M values are about a millisecond of the helper's work."""


@functools.cache
def _pause():
    """OpenMP's ``omp_pause_resource_all`` as the process resolves it, or None."""
    if not torch.backends.openmp.is_available():
        return None
    try:
        fn = ctypes.CDLL(None).omp_pause_resource_all
    except (AttributeError, OSError, TypeError):  # an OpenMP before 5.0, or no process-wide namespace
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn


def rest_workers(work: int) -> None:
    """Release the calling thread's idle OpenMP workers before ``work`` values of kernel work.

    Nothing below ``WORTH_IT`` values, or where the runtime cannot.

    Call it outside any parallel region (the runtime then declines), on the thread that
    runs torch's ops, right before work that shares the CPU with threads of its own
    (``kernels.can_share``: torch runs two threads or more, so there are workers).
    """
    if work < WORTH_IT:
        return
    pause = _pause()
    if pause is not None:
        pause(_SOFT)
