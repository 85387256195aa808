"""The ``weightreport build`` command: outputs, exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys

from weightreport.cli import main


def test_build_writes_html(tiny_run, tmp_path, capsys):
    """``build RUN -o OUT`` writes the file, prints its path and exits 0."""
    out = tmp_path / "x" / "report.html"
    assert main(["build", str(tiny_run), "-o", str(out), "--title", "My title"]) == 0
    assert out.is_file()
    assert "<h1>My title</h1>" in out.read_text(encoding="utf-8")
    assert str(out) in capsys.readouterr().out


def test_missing_path(tmp_path, capsys):
    """A missing run directory gives exit 2 and one line naming the path."""
    assert main(["build", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("weightreport: error: ") and err.count("\n") == 1
    assert "nope" in err


def test_not_a_run(tmp_path, capsys):
    """A directory without run.json gives exit 2 and one line."""
    assert main(["build", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a weightreport run" in err and err.count("\n") == 1


def test_unwritable_output(tiny_run, tmp_path, capsys):
    """An output path under a regular file gives exit 2 and one line."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["build", str(tiny_run), "-o", str(blocker / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and err.count("\n") == 1


def test_html_output_named_pdf(tiny_run, tmp_path, capsys):
    """``-o report.pdf`` would write HTML under a PDF name: exit 2, one line, nothing written."""
    out = tmp_path / "report.pdf"
    assert main(["build", str(tiny_run), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--pdf" in err and err.count("\n") == 1
    assert not out.exists()


def test_no_traceback_subprocess(tmp_path):
    """The installed entry point prints no traceback for bad input."""
    proc = subprocess.run([sys.executable, "-m", "weightreport.cli", "build", str(tmp_path / "missing")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_build_reads_thresholds_from_config(tiny_run, tmp_path, capsys):
    """build takes --config like check and summary; an unknown threshold exits 2 in one line."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[tool.weightreport]\nbogus = 1\n")
    assert main(["build", str(tiny_run), "-o", str(tmp_path / "r.html"), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bogus" in err and len(err.strip().splitlines()) == 1
    good = tmp_path / "good.toml"
    good.write_text("[tool.weightreport]\nignore = ['outliers']\n")
    assert main(["build", str(tiny_run), "-o", str(tmp_path / "r.html"), "--config", str(good)]) == 0
