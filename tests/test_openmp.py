"""torch's idle OpenMP workers released before the kernels share the CPU (``stats.openmp``)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from weightreport.stats import describe, kernels
from weightreport.stats.openmp import WORTH_IT, _pause, rest_workers

needs_pause = pytest.mark.skipif(_pause() is None, reason="this torch's OpenMP has no omp_pause_resource_all")


@pytest.fixture
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def _threads() -> set[str]:
    return set(os.listdir("/proc/self/task"))


@needs_pause
@pytest.mark.usefixtures("two_threads")
def test_released_workers_come_back_with_the_same_count_and_results():
    """After a parallel op, the workers are released, and torch's next parallel op has its threads and sums alike."""
    x = torch.randn(4_000_000, generator=torch.Generator().manual_seed(0))
    before = x.sum()
    rest_workers(WORTH_IT)
    assert torch.get_num_threads() == 2
    assert torch.equal(x.sum(), before)
    rest_workers(WORTH_IT)  # again, with the workers just started
    assert torch.equal(x.sum(), before)


@pytest.fixture
def spinning(two_threads):
    """The process's threads right after a parallel op left GNU OpenMP's workers spinning."""
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    if "libgomp" not in Path("/proc/self/maps").read_text():
        pytest.skip("another OpenMP runtime: it need not end its workers")
    torch.randn(4_000_000).sum()
    return _threads()


@needs_pause
def test_libgomp_ends_its_workers(spinning):
    """With GNU OpenMP, the workers that a parallel op left spinning end: the process has fewer threads."""
    threads = spinning
    rest_workers(WORTH_IT)
    deadline = time.monotonic() + 5
    while threads <= _threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not threads <= _threads()


@needs_pause
def test_small_work_keeps_the_workers(spinning):
    """Below ``WORTH_IT`` values of work the workers are left as they are: no thread ends."""
    rest_workers(WORTH_IT - 1)
    time.sleep(0.2)
    assert spinning <= _threads()


@pytest.mark.usefixtures("two_threads")
def test_describe_after_a_parallel_op_equals_describe_with_one_thread():
    """Large tensors shared with the helper (the workers released first) are described as on one thread."""
    rng = np.random.default_rng(3)
    tensors = [torch.from_numpy(rng.normal(size=n).astype(np.float32)) for n in (900_000, 300_000, 40_000)]
    torch.randn(4_000_000).sum()  # leaves the workers spinning
    shared, _ = describe(tensors)
    if kernels.can_share():
        torch.set_num_threads(1)
    alone, _ = describe(tensors)
    assert shared == alone
