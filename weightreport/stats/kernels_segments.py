"""Compiled sums over the segments of one host block (numba): the small parameters' update norms.

``segment_squares`` is ``SmallParams``' one pass over the front of a snapshot's host block,
where every small parameter is a segment. Registered with ``kernels._jit``, as the other
kernels: compiled at the first call of any, numba imported only then.
"""

from __future__ import annotations

import numpy as np

from weightreport.stats.kernels import _jit


@_jit(False)
def segment_squares(w, prev, init, starts, first, out):  # pragma: no cover - compiled
    """``‖w − prev‖², ‖prev‖², ‖w − init‖²`` of each segment of ``w`` (float64, from each of
    ``starts`` to the next, the last to the end) into ``out``'s rows, summed in order in
    float64, copying ``w`` into ``prev`` as it goes.

    ``first``: no previous values yet (``prev`` is only written): the row is ``‖w‖², NaN,
    ‖w − init‖²``. A NaN in ``init`` (unknown initial values) makes the last square NaN.
    """
    k = starts.size
    for j in range(k):
        a = starts[j]
        b = starts[j + 1] if j + 1 < k else w.size
        s0 = s1 = s2 = 0.0
        for i in range(a, b):
            x = w[i]
            d = x - init[i]
            s2 += d * d
            if first:
                s0 += x * x
            else:
                p = prev[i]
                e = x - p
                s0 += e * e
                s1 += p * p
            prev[i] = x
        out[j, 0] = s0
        out[j, 1] = np.nan if first else s1
        out[j, 2] = s2
