"""``weightreport summary`` and ``check``: golden Markdown, JSON content, escaping and exit codes."""

from __future__ import annotations

import json

from conftest import XSS

from weightreport.cli import main
from weightreport.report.analysis.summary import summarize
from weightreport.report.render.markdown import render_summary_md
from weightreport.runfmt.reader import load_run


def test_markdown_golden(tiny_run, snapshot):
    """The Markdown summary of the fixed small run matches the stored golden text."""
    assert render_summary_md(summarize(load_run(tiny_run))) == snapshot


def test_markdown_is_short(tiny_run, xss_run):
    """Summaries stay within about 60 lines, fit for a pull-request comment."""
    for run in (tiny_run, xss_run):
        assert len(render_summary_md(summarize(load_run(run))).splitlines()) <= 60


def test_markdown_escapes_user_strings(xss_run):
    """HTML, pipes and backticks in run and tensor names cannot break out of the Markdown."""
    text = render_summary_md(summarize(load_run(xss_run)))
    assert XSS not in text and "<img" not in text and "<script" not in text.lower()
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in text
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i and lines[i - 1].startswith("|"):
            assert line.replace("\\|", "").count("|") == lines[i - 1].replace("\\|", "").count("|")


def test_pipes_and_backticks_are_escaped(tiny_run, tmp_path):
    """A run name with a pipe and backticks is backslash-escaped in the Markdown."""
    s = summarize(load_run(tiny_run))
    s.overview.name = "a|b `c`"
    assert "a\\|b \\`c\\`" in render_summary_md(s)


def test_json_format(tiny_run, capsys):
    """--format json prints the findings with code, severity, tensor and message, and the scalars."""
    assert main(["summary", str(tiny_run), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["run"] == "tiny-run" and data["report"].endswith("tiny-run.html")
    assert {"findings", "scalars", "layers", "counts", "verdict"} <= set(data)
    for f in data["findings"]:
        assert {"code", "severity", "tensor", "message", "suggestion", "step_range", "values"} <= set(f)
    loss = next(s for s in data["scalars"] if s["name"] == "loss")
    assert loss["best"] <= loss["last"] <= loss["first"]


def test_summary_markdown_cli(tiny_run, capsys):
    """The summary command prints the Markdown to stdout and exits 0."""
    assert main(["summary", str(tiny_run)]) == 0
    assert capsys.readouterr().out.startswith("### ")


def test_check_exit_codes(tiny_run, xss_run, tmp_path, capsys):
    """check: 1 on an error finding, 0 on a run with none (at the chosen level), 2 on bad input."""
    assert main(["check", str(xss_run)]) == 1
    assert "FAIL error   nan_inf" in capsys.readouterr().out
    assert main(["check", str(tiny_run)]) == 0
    assert main(["check", str(tiny_run), "--fail-on", "warning"]) == 1  # its dead_units warnings
    assert main(["check", str(tmp_path / "missing")]) == 2
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("ignore = ['nan_inf']\n")
    assert main(["check", str(xss_run), "--config", str(cfg)]) == 1  # the run itself failed
    cfg.write_text("ignore = ['nan_inf', 'run_failed']\n")
    assert main(["check", str(xss_run), "--config", str(cfg)]) == 0
    cfg.write_text("no_such_threshold = 1\n")
    assert main(["check", str(tiny_run), "--config", str(cfg)]) == 2
    assert "unknown threshold" in capsys.readouterr().err
