"""Where weightreport keeps what it can build again: the Vega bundle and compiled templates.

The folder is ``$WEIGHTREPORT_CACHE_DIR``, else ``$XDG_CACHE_HOME/weightreport``, else
``~/.cache/weightreport``. Everything in it is a cache: a file that is missing, damaged or
cannot be written is built again and skipped, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import jinja2
from jinja2.bccache import Bucket


def cache_dir() -> Path:
    """The cache folder (not created here)."""
    root = os.environ.get("WEIGHTREPORT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "weightreport")
    return Path(root)


class QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja's file cache of compiled templates, which skips a file it cannot read or write.

    Jinja checks each file against its template's source (a changed template is compiled
    again); a damaged file is compiled again too, and an unwritable folder leaves the
    template compiled in memory only.
    """

    def load_bytecode(self, bucket: Bucket) -> None:
        """Load the compiled template when its file is readable and whole (else it is compiled)."""
        try:
            super().load_bytecode(bucket)
        except Exception:  # a damaged file fails in pickle or marshal in many ways: compile the template
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        """Store the compiled template when the folder is writable (else keep it in memory only)."""
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def template_cache(settings: dict) -> QuietBytecodeCache | None:
    """The compiled-template cache for an environment of ``settings`` (None when the folder cannot be made).

    Its folder is named for Jinja's version and the settings, since both change the
    compiled code of an unchanged template.
    """
    digest = hashlib.sha256(repr(sorted(settings.items())).encode("utf-8")).hexdigest()[:12]
    folder = cache_dir() / f"jinja2-{jinja2.__version__}-{digest}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return QuietBytecodeCache(str(folder))
