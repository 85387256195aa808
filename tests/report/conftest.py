"""Fixtures for the report tests: small synthetic run directories written as real files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from synthetic import Spec, resnet50_spec, small_spec, write_run

XSS = "</script><img src=x onerror=alert(1)>"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A fixed small run: conv, BatchNorm, two linears, probes and heatmaps."""
    return write_run(tmp_path_factory.mktemp("runs") / "tiny-run", small_spec())


@pytest.fixture(scope="session")
def xss_run(tmp_path_factory) -> Path:
    """A failed run whose name, module names and scalars carry an HTML/JS injection payload."""
    spec = small_spec(name=f"run {XSS}")
    spec.layers = [(XSS if n == "fc1" else n, t, s) for n, t, s in spec.layers]
    spec.status = "failed"
    spec.nan_tensor = f"{XSS}.weight"
    return write_run(tmp_path_factory.mktemp("runs") / "xss-run", spec)


@pytest.fixture(scope="session")
def empty_run(tmp_path_factory) -> Path:
    """A running run with no layers beyond one linear, no probes, no heatmaps."""
    spec = Spec(name="empty-ish", layers=[("fc", "Linear", (2, 3))], snapshots=2, status="running",
                heatmaps=False, probes=False)
    return write_run(tmp_path_factory.mktemp("runs") / "empty-ish", spec)


HOSTILE_LAYER = "layer1.<script>alert(1)</script>.conv"
"""A module name with a script tag between dots, for the big run."""


@pytest.fixture(scope="session")
def big_run(tmp_path_factory) -> Path:
    """A ResNet-50-shaped run (about 200 tensors, 6 snapshots) whose activation layers have many dead units."""
    spec = resnet50_spec(snapshots=6)
    spec.name, spec.dead_spread = "big-run", True
    spec.layers = [(HOSTILE_LAYER if n == "layer1.0.conv2" else n, t, s) for n, t, s in spec.layers]
    return write_run(tmp_path_factory.mktemp("runs") / "big-run", spec)
