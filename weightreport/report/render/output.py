"""Where report files go, and the atomic writer every page builder uses."""

from __future__ import annotations

from pathlib import Path

from weightreport.errors import WeightReportError

REPORTS_DIR = Path("reports")
"""Reports go here when no output path is given."""


def write_output(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file renamed into place).

    Raises:
        WeightReportError: the path is unwritable.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        msg = f"cannot write {path}: {exc.strerror or exc}; choose a writable output path"
        raise WeightReportError(msg) from None


def safe_name(name: str) -> str:
    """``name`` reduced to characters safe in a file name (``run`` when nothing is left)."""
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip("._")
    return keep or "run"
