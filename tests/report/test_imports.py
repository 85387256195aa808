"""The report side's commands load only what they need."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(code: str) -> set[str]:
    """The top-level modules loaded in a fresh interpreter after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_check_and_summary_load_neither_torch_nor_numba(tiny_run):
    """``weightreport check RUN`` and ``summary RUN`` run without importing torch or numba."""
    for command in ("check", "summary"):
        code = ("import contextlib, io\nfrom weightreport.cli import main\n"
                "with contextlib.redirect_stdout(io.StringIO()):\n"
                f"    rc = main([{command!r}, {str(tiny_run)!r}])\nassert rc in (0, 1), rc")
        loaded = _loaded_after(code)
        assert "pandas" in loaded, command  # it did read the run
        assert not loaded & {"torch", "numba"}, (command, loaded & {"torch", "numba"})
