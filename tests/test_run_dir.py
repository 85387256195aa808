"""The run directory: crash safety, tolerant reading, refusing to overwrite, write failures."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from weightreport import Collector, WeightReportError, load_run
from weightreport.runfmt.reader import CorruptPartWarning


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))


def _train(model, wr, steps):
    x = torch.randn(8, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        wr.step(loss=1.0)


def _write_run(path, steps=4, **kwargs):
    model = _model()
    with Collector(model, path, every=1, flush_every=1, **kwargs) as wr:
        _train(model, wr, steps)
    return model


def test_sigkill_mid_training_leaves_a_loadable_run(tmp_path):
    """A training process killed with SIGKILL leaves a run that loads, marked running, with its flushed parts."""
    path = tmp_path / "run"
    script = textwrap.dedent(f"""
        import sys, torch
        from torch import nn
        from weightreport import Collector
        model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.randn(8, 3)
        wr = Collector(model, {str(path)!r}, every=1, flush_every=1)
        step = 0
        while True:
            opt.zero_grad(); model(x).pow(2).mean().backward(); opt.step()
            step = wr.step(loss=float(step))
            if step == 5:
                print("ready", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)  # let it run on into the middle of later flushes
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    run = load_run(path)  # no CorruptPartWarning: filterwarnings=error would fail the test
    assert run.manifest["status"] == "running"
    stats = run.tables["stats"]
    steps = sorted(stats[stats.kind == "param"].step.unique())
    assert steps[:6] == [0, 1, 2, 3, 4, 5]
    assert steps == list(range(len(steps)))
    assert run.manifest["last_step"] >= 5
    assert set(run.tables["scalars"].step) <= set(range(1, run.manifest["last_step"] + 2))


def test_corrupt_and_truncated_parts_are_skipped_with_a_warning(tmp_path):
    """A truncated and a garbage part are each skipped with a CorruptPartWarning naming the file; the rest loads."""
    path = tmp_path / "run"
    _write_run(path)
    run = load_run(path)
    parts = run.parts("stats")
    full = run.tables["stats"]
    assert len(parts) >= 4
    data = parts[1].read_bytes()
    parts[1].write_bytes(data[: len(data) // 2])
    parts[2].write_bytes(b"not parquet at all")
    with pytest.warns(CorruptPartWarning) as record:
        stats = load_run(path).tables["stats"]
    messages = [str(w.message) for w in record]
    assert any(parts[1].name in m for m in messages)
    assert any(parts[2].name in m for m in messages)
    kept = pq.read_table(parts[0]).num_rows + sum(pq.read_table(p).num_rows for p in parts[3:])
    assert len(stats) == kept < len(full)


def test_missing_part_and_empty_table_load(tmp_path):
    """A deleted part just leaves its rows out, and a table with no parts loads empty with its columns."""
    path = tmp_path / "run"
    _write_run(path)
    run = load_run(path)
    run.parts("histograms")[0].unlink()
    assert len(load_run(path).tables["histograms"]) > 0
    probes = load_run(path).tables["probes"]
    assert len(probes) == 0 and list(probes.columns)[:3] == ["step", "module", "kind"]


def test_missing_path_and_non_run_get_one_line_errors(tmp_path):
    """A missing path and a directory that is not a run each get a one-line WeightReportError naming it."""
    for target in (tmp_path / "nope", tmp_path):
        with pytest.raises(WeightReportError) as info:
            load_run(target)
        assert str(target) in str(info.value) and "\n" not in str(info.value)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "run.json").write_text("{broken")
    with pytest.raises(WeightReportError, match="damaged"):
        load_run(bad)
    (bad / "run.json").write_text(json.dumps({"format_version": 999}))
    with pytest.raises(WeightReportError, match="upgrade"):
        load_run(bad)


def test_existing_run_is_not_overwritten(tmp_path):
    """A second collector on an existing run fails by default and leaves the run untouched."""
    path = tmp_path / "run"
    _write_run(path)
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    with pytest.raises(WeightReportError, match="already holds a run"):
        Collector(_model(), path)
    assert {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} == before


def test_resume_appends_and_continues_step_numbers(tmp_path):
    """mode="resume" continues the step count, keeps the old parts and measures distance from the first init."""
    path = tmp_path / "run"
    model = _write_run(path, steps=4)
    old_parts = {p: p.read_bytes() for p in (path / "tables").rglob("*.parquet")}
    with Collector(model, path, every=1, mode="resume") as wr:
        assert wr.current_step == 4
        _train(model, wr, 3)
    run = load_run(path)
    assert run.manifest["last_step"] == 7 and run.manifest["resumed_at"] == [4]
    assert run.manifest["status"] == "complete"
    assert all(p.read_bytes() == data for p, data in old_parts.items())
    stats = run.tables["stats"]
    assert sorted(stats[stats.kind == "param"].step.unique()) == list(range(8))
    assert sorted(run.tables["scalars"].step) == list(range(1, 8))
    d = stats[(stats.kind == "param")].set_index(["step", "tensor"])["dist_from_init"]
    assert d[(7, "0.weight")] > 0


def test_resume_of_a_missing_run_starts_one(tmp_path):
    """mode="resume" on an empty path starts a new run from step 0."""
    model = _model()
    with Collector(model, tmp_path / "new", mode="resume") as wr:
        assert wr.current_step == 0
    assert load_run(tmp_path / "new").manifest["status"] == "complete"


def test_file_in_the_way_fails_at_construction(tmp_path):
    """A file where the run directory should be, or a non-empty non-run directory, fails at construction."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WeightReportError, match="is a file"):
        Collector(_model(), blocker)
    with pytest.raises(WeightReportError):
        Collector(_model(), blocker / "run")
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_text("a,b")
    with pytest.raises(WeightReportError, match="not empty"):
        Collector(_model(), other)


@pytest.mark.skipif(os.geteuid() == 0, reason="root bypasses file permissions")
def test_read_only_directory_fails_at_construction(tmp_path):
    """A directory without write permission fails at construction with WeightReportError."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(WeightReportError, match="permissions"):
            Collector(_model(), ro / "run")
    finally:
        ro.chmod(0o700)


def test_unwritable_directory_fails_at_construction_simulated(tmp_path, monkeypatch):
    """When creating the directory is refused (simulated EACCES) the collector fails at construction."""
    from pathlib import Path

    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(WeightReportError, match="Permission denied") as info:
        Collector(_model(), tmp_path / "run")
    assert "\n" not in str(info.value)


def _failing(monkeypatch, module, name, failures):
    """Make ``module.name`` raise ENOSPC for the next ``failures[0]`` calls."""
    real = getattr(module, name)

    def flaky(*args, **kwargs):
        if failures[0] > 0:
            failures[0] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)


@pytest.mark.parametrize("target", ["write_table", "replace"])
def test_disk_full_warns_keeps_rows_and_recovers(tmp_path, monkeypatch, target):
    """A failed flush warns loudly, keeps its rows buffered, and a later flush writes them all."""
    import weightreport.runfmt.writer as writer

    module, name = (writer.pq, "write_table") if target == "write_table" else (writer.os, "replace")
    path = tmp_path / "run"
    model = _model()
    wr = Collector(model, path, every=1, flush_every=1)
    failures = [1]
    _failing(monkeypatch, module, name, failures)
    with pytest.warns(RuntimeWarning, match="No space left"):
        _train(model, wr, 2)  # step 1's write fails on its thread; step 2's flush says so
    assert wr._writer.buffered > 0
    with pytest.warns(RuntimeWarning, match="writes to .* again; 0 snapshot"):
        _train(model, wr, 1)
    wr.close()
    run = load_run(path)
    stats = run.tables["stats"]
    assert sorted(stats[stats.kind == "param"].step.unique()) == [0, 1, 2, 3]
    assert sorted(run.tables["scalars"].step) == [1, 2, 3]
    assert not list(path.rglob("*.tmp"))


def test_disk_full_at_close_warns_and_loses_nothing_written(tmp_path, monkeypatch):
    """A flush that still fails at close warns (never raises); parts already written stay readable."""
    import weightreport.runfmt.writer as writer

    path = tmp_path / "run"
    model = _model()
    wr = Collector(model, path, every=1, flush_every=1)
    _train(model, wr, 2)
    wr.log(val_loss=0.5)  # a row still buffered at close
    wr._writer.settle()  # step 2's write, on its thread, has finished
    written = {p: p.read_bytes() for p in (path / "tables").rglob("*.parquet")}
    failures = [10**6]
    _failing(monkeypatch, writer.pq, "write_table", failures)
    with pytest.warns(RuntimeWarning, match="No space left"):
        wr.close()
    monkeypatch.undo()
    assert all(p.read_bytes() == data for p, data in written.items())
    run = load_run(path)
    stats = run.tables["stats"]
    assert sorted(stats[stats.kind == "param"].step.unique()) == [0, 1, 2]


def test_persistent_disk_full_bounds_the_buffer_and_counts_what_it_drops(tmp_path, monkeypatch):
    """While flushes fail, at most MAX_UNWRITTEN_FLUSHES × flush_every snapshots wait; later ones are
    dropped and counted, and once writes work again everything kept is written with the count."""
    import weightreport.runfmt.writer as writer
    from weightreport.collect.flushes import MAX_UNWRITTEN_FLUSHES

    path = tmp_path / "run"
    model = _model()
    wr = Collector(model, path, every=1, flush_every=1)
    failures = [10**6]
    _failing(monkeypatch, writer.pq, "write_table", failures)
    with pytest.warns(RuntimeWarning, match="No space left") as warned:
        _train(model, wr, 10)
    assert len([w for w in warned if "cannot write" in str(w.message)]) == 1  # warned once, loudly
    assert wr._writes.unflushed == MAX_UNWRITTEN_FLUSHES
    assert wr._writes.dropped == 10 - MAX_UNWRITTEN_FLUSHES
    failures[0] = 0  # space again
    with pytest.warns(RuntimeWarning, match=f"{10 - MAX_UNWRITTEN_FLUSHES} snapshot.s. were dropped"):
        _train(model, wr, 1)
    wr.close()
    run = load_run(path)
    steps = sorted(run.tables["stats"].query("kind == 'param'").step.unique())
    assert steps == [0, 1, 2, 3, 4, 11]
    assert run.manifest["dropped_snapshots"] == 10 - MAX_UNWRITTEN_FLUSHES
    assert sorted(run.tables["scalars"].step) == list(range(1, 12))  # scalars are never dropped
    assert run.manifest["status"] == "complete"


def test_manifest_json_is_the_same_on_both_encoding_paths():
    """run.json's encoder takes a plain object as it is, and copies one with NaN, Inf or int keys
    (written null and as text); both give sorted, deterministic JSON."""
    import json
    import math

    from weightreport.runfmt.writer import _json_safe, dump_json

    plain = {"b": [1, 2.5, "x"], "a": {"z": None, "y": True}, "c": (3, 4)}
    odd = {"b": [1, math.nan], "a": {"z": math.inf, 2: -math.inf}, "c": (3, 4)}
    for obj in (plain, odd):
        for indent in (None, 1):
            expected = json.dumps(_json_safe(obj), sort_keys=True, indent=indent, allow_nan=False)
            assert dump_json(obj, indent) == expected
    assert json.loads(dump_json(odd)) == {"b": [1, None], "a": {"z": None, "2": None}, "c": [3, 4]}


def test_parts_are_written_delta_packed_and_byte_stream_split(tmp_path):
    """Integer columns of a part are delta-packed, floating ones byte-stream-split, and they read back whole."""
    import pyarrow.parquet as pq

    from weightreport.runfmt.writer import RunWriter

    writer = RunWriter(tmp_path)
    rows = [{"step": s, "tensor": "w", "kind": "param", "edges": [0.0, 0.5, 1.0], "counts": [s, 3]}
            for s in range(5)]
    writer.add("histograms", rows)
    writer.flush({"format_version": 1})
    part = next((tmp_path / "tables" / "histograms").glob("part-*.parquet"))
    meta = pq.ParquetFile(part).metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    assert "DELTA_BINARY_PACKED" in encodings["step"] and "DELTA_BINARY_PACKED" in encodings["counts.list.element"]
    assert "BYTE_STREAM_SPLIT" in encodings["edges.list.element"]
    assert pq.read_table(part).to_pylist() == rows


def test_flushes_during_training_write_on_a_thread_and_close_waits_for_them(tmp_path, monkeypatch):
    """The constructor's and close()'s writes are the caller's own; a flush during training hands its
    files to a thread, and close() waits for it, so every part is on disk once close returns."""
    import threading
    import time

    import weightreport.runfmt.writer as writer

    main, writers, real = threading.current_thread().name, [], writer.pq.write_table

    def slow(*args, **kwargs):
        writers.append(threading.current_thread().name)
        if writers[-1] != main:
            time.sleep(0.05)  # a write still going when close() is called
        return real(*args, **kwargs)

    monkeypatch.setattr(writer.pq, "write_table", slow)
    path = tmp_path / "run"
    model = _model()
    wr = Collector(model, path, every=1, flush_every=1)
    constructed = len(writers)
    assert constructed and set(writers) == {main}
    _train(model, wr, 4)
    wr.close()
    later = writers[constructed:]
    closing = later.index(main)
    assert set(later[:closing]) == {"weightreport-writer"} and set(later[closing:]) == {main}
    run = load_run(path)
    assert sorted(run.tables["stats"].query("kind == 'param'").step.unique()) == [0, 1, 2, 3, 4]
    assert sorted(run.tables["scalars"].step) == [1, 2, 3, 4]


def test_a_bug_in_the_writer_turns_the_collector_off_and_training_goes_on(tmp_path, monkeypatch):
    """An error other than an OSError in a write, on its thread or not, says it came from writing the
    run, turns the collector off, and never reaches the training loop."""
    import weightreport.runfmt.writer as writer

    def broken(*args, **kwargs):
        msg = "a bug"
        raise ValueError(msg)

    path = tmp_path / "run"
    model = _model()
    wr = Collector(model, path, every=1, flush_every=1)
    monkeypatch.setattr(writer.pq, "write_table", broken)
    with pytest.warns(RuntimeWarning, match="writing the run raised ValueError: a bug"):
        _train(model, wr, 3)
    assert wr._off is not None and "writing the run" in wr._off
    monkeypatch.undo()
    wr.close()
    assert load_run(path).manifest["collector_error"] == wr._off
