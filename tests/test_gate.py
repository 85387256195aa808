"""``weightreport check`` as a CI gate that cannot be fooled: failed, unfinished and incomplete runs."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from torch import nn

from weightreport import Collector, build_report
from weightreport.cli import main


def _run(path, steps=6, fail_at=None, close=True):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(32, 4), torch.randn(32, 1)
    wr = Collector(model, path, every=1, flush_every=1, optimizer=opt, config={"lr": 0.05})
    try:
        with wr if close else contextlib.nullcontext():
            for step in range(1, steps + 1):
                opt.zero_grad()
                loss = nn.functional.mse_loss(model(x), y)
                loss.backward()
                opt.step()
                wr.step(loss=loss.item())
                if step == fail_at:
                    msg = "CUDA out of memory (simulated)"
                    raise RuntimeError(msg)
    except RuntimeError:
        pass
    return path


def _check(capsys, *args) -> tuple[int, str]:
    code = main(["check", *map(str, args)])
    return code, capsys.readouterr().out


def test_check_fails_a_run_whose_training_crashed(tmp_path, capsys):
    """A run that raised inside the collector's with-block fails the gate with run_failed and its error."""
    run = _run(tmp_path / "run", fail_at=3)
    code, out = _check(capsys, run)
    assert code == 1
    assert "FAIL error   run_failed" in out and "CUDA out of memory (simulated)" in out


def test_a_run_still_marked_running_is_a_warning(tmp_path, capsys):
    """A run whose collector never closed gets run_incomplete (warning): passing at error, failing at warning."""
    run = _run(tmp_path / "run", close=False)
    code, out = _check(capsys, run)
    assert code == 0 and "run_incomplete" in out and "still marked running" in out
    assert _check(capsys, run, "--fail-on", "warning")[0] == 1


def test_a_deleted_part_is_named_by_data_missing(tmp_path, capsys):
    """Deleting one stats part gives a data_missing warning that names the part; the report's banner says it."""
    run = _run(tmp_path / "run")
    victim = sorted((run / "tables" / "stats").iterdir())[2]
    victim.unlink()
    code, out = _check(capsys, run, "--fail-on", "warning")
    assert code == 1
    assert "data_missing" in out and f"tables/stats/{victim.name} is missing" in out
    assert "the stats hold 6 of the 7 snapshots" in out
    html = build_report(run, html=tmp_path / "r.html").html.read_text()
    assert "Some of this run’s data is missing" in html and victim.name in html


def test_fail_on_code_and_json(tmp_path, capsys):
    """--fail-on-code fails on that code whatever its severity; --format json gives one object with every finding."""
    run = _run(tmp_path / "run", close=False)
    code, out = _check(capsys, run, "--fail-on-code", "run_incomplete", "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["passed"] is False and report["failing"] == 1
    assert report["fail_on_code"] == ["run_incomplete"]
    assert [f["code"] for f in report["findings"] if f["fails"]] == ["run_incomplete"]
    assert _check(capsys, run, "--fail-on-code", "plateau")[0] == 0
    assert main(["check", str(run), "--fail-on-code", "plateu"]) == 2
    assert "unknown finding code 'plateu'" in capsys.readouterr().err


def test_summary_json_carries_overhead_and_config(tmp_path, capsys):
    """summary --format json has the collector's measured overhead and the run's config."""
    run = _run(tmp_path / "run")
    assert main(["summary", str(run), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["overhead"]) == {"collector_s", "training_s", "fraction", "compile_s", "without_compile"}
    assert 0 < summary["overhead"]["fraction"] < 1
    assert summary["config"] == {"lr": "0.05"}
    assert main(["summary", str(run)]) == 0
    assert "weightreport took" in capsys.readouterr().out


@pytest.mark.parametrize("status", ["interrupted"])
def test_an_interrupted_run_is_incomplete(tmp_path, capsys, status):
    """A run marked interrupted (SIGTERM) gets run_incomplete, and the report's banner says interrupted."""
    run = _run(tmp_path / "run")
    manifest = json.loads((run / "run.json").read_text())
    manifest["status"], manifest["error"] = status, "SIGTERM"
    (run / "run.json").write_text(json.dumps(manifest))
    code, out = _check(capsys, run)
    assert code == 0 and "run_incomplete" in out and "interrupted at step 6" in out
    html = build_report(run, html=tmp_path / "r.html").html.read_text()
    assert "This run was interrupted at step 6" in html
