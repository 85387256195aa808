"""The command line's basics: version, bare invocation, and ``python -m weightreport``."""

from __future__ import annotations

import subprocess
import sys

import weightreport
from weightreport.cli import main


def test_version_prints_the_package_version(capsys):
    """``weightreport --version`` prints the package's version and exits 0."""
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"weightreport {weightreport.__version__}"


def test_bare_command_prints_help(capsys):
    """Bare ``weightreport`` prints the help, listing the commands, and exits 0."""
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: weightreport")
    for command in ("build", "check", "summary", "diff", "inspect", "demo", "import-tensorboard"):
        assert command in out


def test_python_dash_m_runs_the_same_command_line():
    """``python -m weightreport --version`` answers as the installed script does."""
    done = subprocess.run([sys.executable, "-m", "weightreport", "--version"], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == f"weightreport {weightreport.__version__}"
