"""Training never dies for the collector: full disks, its own errors, SIGTERM; and what it costs."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
from torch import nn

from weightreport import Collector, load_run
from weightreport.stats import kernels as stats_kernels

TRAIN = """
import sys, time, warnings, torch
from torch import nn
from weightreport import Collector
warnings.simplefilter("always")
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 64))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(32, 64)
steps = int(sys.argv[2])
with Collector(model, sys.argv[1], every=1, flush_every=2, optimizer=opt) as wr:
    print("started", flush=True)
    for i in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        wr.step(loss=float(i))
        if len(sys.argv) > 3:
            time.sleep(float(sys.argv[3]))
print("trained to the end", flush=True)
"""


def _child(tmp_path: Path, *args: str, **kwargs) -> subprocess.Popen:
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    return subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 300 KB tmpfs (root can mount one here), unmounted afterwards."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_does_not_stop_training(tmp_path, tiny_disk):
    """A child training on a 300 KB tmpfs runs to its end, warns once, and what it flushed is readable."""
    run = tiny_disk / "run"
    child = _child(tmp_path, str(run), "120")
    out, err = child.communicate(timeout=240)
    assert child.returncode == 0, err[-3000:]
    assert "trained to the end" in out
    assert err.count("weightreport cannot write to") == 1, err[-3000:]
    loaded = load_run(run)
    assert loaded.manifest["status"] in ("running", "complete")  # the last manifest that fit
    steps = sorted(loaded.table("stats")["step"].unique())
    assert steps[0] == 0 and len(steps) >= 2  # the snapshots flushed before the disk filled


def test_an_unwritable_directory_mid_run_does_not_stop_training(tmp_path):
    """A run whose tables folder turns into a file mid-run keeps training, warns, and recovers nothing lost before."""
    run = tmp_path / "run"
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(16, 8)
    with Collector(model, run, every=1, flush_every=1, optimizer=opt) as wr:
        for i in range(3):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
            wr.step(loss=float(i))
        wr._writer.settle()  # step 3's write, on its thread, has finished
        stats_dir = run / "tables" / "stats"
        kept = sorted(stats_dir.iterdir())
        moved = tmp_path / "kept-stats"
        stats_dir.rename(moved)
        stats_dir.write_text("not a folder")  # every write there now fails with an OSError
        with pytest.warns(RuntimeWarning, match="cannot write"):
            for i in range(3):
                opt.zero_grad()
                model(x).pow(2).mean().backward()
                opt.step()
                wr.step(loss=float(i))
        stats_dir.unlink()
        moved.rename(stats_dir)
        with pytest.warns(RuntimeWarning, match="again"):
            wr.step(loss=9.0)
    assert [p.name for p in sorted(stats_dir.iterdir())][: len(kept)] == [p.name for p in kept]
    loaded = load_run(run)
    assert loaded.manifest["status"] == "complete"
    assert sorted(loaded.table("stats")["step"].unique()) == list(range(8))


def test_sigterm_flushes_every_buffered_snapshot_and_marks_interrupted(tmp_path):
    """A child that gets SIGTERM mid-training leaves every snapshot taken on disk, status interrupted,
    and ends as SIGTERM ends a process."""
    run = tmp_path / "run"
    child = _child(tmp_path, str(run), "100000", "0.02")
    assert child.stdout.readline().strip() == "started"
    time.sleep(1.5)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGTERM, err[-3000:]
    assert "trained to the end" not in out
    loaded = load_run(run)
    manifest = loaded.manifest
    assert manifest["status"] == "interrupted"
    steps = sorted(loaded.table("stats")["step"].unique())
    assert steps == list(range(manifest["last_step"] + 1))  # every=1: nothing buffered was lost
    assert manifest["snapshots"] == len(steps)
    assert manifest["last_step"] >= 5


def test_sigterm_hands_the_signal_to_the_handler_installed_before():
    """A handler installed before the collector still runs on SIGTERM, after the collector's flush."""
    seen = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        from weightreport.collect.signals import TermHandler

        order = []
        handler = TermHandler(lambda: order.append("flush"))
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert order == ["flush"] and seen == [signal.SIGTERM]
        assert not handler.installed  # the earlier handler is back
    finally:
        signal.signal(signal.SIGTERM, before)


def test_sigterm_during_a_collector_call_waits_for_its_end():
    """A SIGTERM that arrives while the collector is busy is acted on when its call ends."""
    from weightreport.collect.signals import TermHandler

    seen, order = [], []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        handler = TermHandler(lambda: order.append("flush"))
        handler.busy = True
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert order == [] and seen == [] and handler.pending is not None
        handler.busy = False
        handler.fire()
        assert order == ["flush"] and seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_hook_that_raises_does_not_stop_training(tmp_path, monkeypatch):
    """An error inside the collector's activation hook warns once, turns the capture off, and training goes on."""
    from weightreport.collect import hooks

    def broken(out, slope=None, dim=1):
        msg = "boom"
        raise RuntimeError(msg)

    monkeypatch.setattr(hooks, "unit_reader", lambda module: broken)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(8, 4)
    with (Collector(model, tmp_path / "run", every=2) as wr,
          pytest.warns(RuntimeWarning, match="stopped capturing activations.*boom")):
        for _ in range(6):
            opt.zero_grad()
            model(x).pow(2).mean().backward()  # the armed forward's hook raises inside
            opt.step()
            wr.step(loss=1.0)
    run = load_run(tmp_path / "run")
    assert run.manifest["status"] == "complete"
    assert "boom" in run.manifest["collector_error"]
    params = run.table("stats").query("kind == 'param'")
    assert sorted(params["step"].unique()) == [0, 2, 4, 6]  # parameters still recorded


def test_an_error_inside_a_snapshot_turns_the_collector_off_not_training(tmp_path, monkeypatch):
    """When taking a snapshot raises, the collector warns once and stops; training's steps go on."""
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    wr = Collector(model, tmp_path / "run", every=1)

    def broken(*args, **kwargs):
        msg = "snapshot bug"
        raise ValueError(msg)

    monkeypatch.setattr(wr._taker, "take", broken)
    with pytest.warns(RuntimeWarning, match="stopped recording at step 1.*snapshot bug"):
        assert wr.step(loss=1.0) == 1
    assert wr.step(loss=2.0) == 2  # off: no second warning, no error
    wr.close()
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["status"] == "complete" and "snapshot bug" in manifest["collector_error"]


class _SlowToDescribe(nn.Module):
    """A model whose every parameter tensor makes a snapshot slow (many separate tensors)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(2, 2) for _ in range(60))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def test_a_budget_lengthens_the_interval(tmp_path):
    """With budget=0.01 on a model whose snapshots cost far more than its steps, snapshots spread out,
    each change is recorded, and the interval never falls below every."""
    model = _SlowToDescribe()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(4, 2)
    with Collector(model, tmp_path / "run", every=2, budget=0.01, activations=False) as wr:
        for _ in range(120):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
            wr.step()
    run = load_run(tmp_path / "run")
    changes = run.manifest["cadence"]
    assert changes and all(c["every"] >= 2 and c["every"] % 2 == 0 for c in changes)
    steps = sorted(run.table("stats")["step"].unique())
    gaps = [b - a for a, b in itertools.pairwise(steps[1:-1])]  # the last is close()'s
    assert max(gaps) > 2  # spread out beyond every=2
    assert len(steps) < 120 // 2  # fewer snapshots than every=2 alone would take
    assert run.manifest["settings"]["budget"] == 0.01


def test_overhead_is_recorded_and_of_the_right_magnitude(tmp_path):
    """run.json's overhead adds up to the wall time of the run, within the right order of magnitude."""
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(64, 32)
    start = time.perf_counter()
    with Collector(model, tmp_path / "run", every=5) as wr:
        for _ in range(40):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
            time.sleep(0.002)  # the training's own time
            wr.step(loss=1.0)
    wall = time.perf_counter() - start
    overhead = load_run(tmp_path / "run").manifest["overhead"]
    assert set(overhead) == {"collector_s", "training_s", "fraction", "compile_s"}
    assert 0 <= overhead["compile_s"] <= overhead["collector_s"]
    total = overhead["collector_s"] + overhead["training_s"]
    assert 0.5 * wall <= total <= 1.05 * wall
    assert overhead["training_s"] >= 40 * 0.002 * 0.9
    assert 0 < overhead["fraction"] < 1
    assert overhead["fraction"] == pytest.approx(overhead["collector_s"] / total, abs=1e-3)


def test_compiling_is_counted_apart_and_left_out_of_the_budget(tmp_path, monkeypatch):
    """Seconds the kernels spend compiling are ``compile_s``, part of ``collector_s``; the budget
    plans from the snapshot's cost without them, so a first use's compile does not stretch the cadence."""
    from weightreport.collect import snapshot

    compiled = []
    real = stats_kernels.compile_seconds  # a cold numba cache compiles for real as well
    monkeypatch.setattr(stats_kernels, "compile_seconds", lambda: real() + sum(compiled))
    take = snapshot.SnapshotTaker.take

    def compiling_take(self, *args, **kwargs):  # as if each snapshot compiled for 0.2 s
        time.sleep(0.2)
        compiled.append(0.2)
        return take(self, *args, **kwargs)

    monkeypatch.setattr(snapshot.SnapshotTaker, "take", compiling_take)
    model = nn.Linear(4, 2)
    # Steps of 50 ms and a budget of half the run: a 0.2 s snapshot would double the interval.
    with Collector(model, tmp_path / "run", every=2, budget=0.5) as wr:
        for _ in range(8):
            model(torch.randn(8, 4)).sum().backward()
            time.sleep(0.05)
            wr.step(loss=1.0)
        figures = wr.overhead
    assert len(compiled) == 5  # steps 0, 2, 4, 6, 8
    assert 1.0 <= figures["compile_s"] <= figures["collector_s"]
    assert load_run(tmp_path / "run").manifest["cadence"] == []


@pytest.mark.skipif(not stats_kernels.AVAILABLE, reason="numba is not installed")
def test_compile_seconds_counts_the_kernels_compiles_only():
    """``kernels.compile_seconds`` times the compiles of weightreport's kernels, from the first kernel
    call on, and not those of the user's own numba functions."""
    import numba
    import numpy as np

    from weightreport.stats import describe

    describe([torch.randn(100_000)])  # a kernel call: numba imported, the clock watching
    before = stats_kernels.compile_seconds()
    users = numba.njit(lambda a: a + 1.0)
    assert users(np.arange(3.0))[2] == 3.0
    assert stats_kernels.compile_seconds() == before
    namespace: dict = {}
    exec("def doubled(a):\n    return a * 2.0\n", namespace)  # no source file: never cached, so compiled here
    kernel = stats_kernels._jit(False)(namespace["doubled"])
    assert kernel(np.arange(3.0))[2] == 4.0
    assert stats_kernels.compile_seconds() > before
