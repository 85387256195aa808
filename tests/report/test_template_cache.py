"""Compiled templates are kept in the cache folder, read back instead of compiled, and skipped when it is unusable."""

from __future__ import annotations

import shutil

import jinja2
import pytest
from jinja2.bccache import bc_magic

from weightreport.inspect.charts import inspect_charts
from weightreport.inspect.model import inspect_model
from weightreport.inspect.page import render_inspect_html
from weightreport.report.render import env
from weightreport.report.render.html import BUNDLE_PLACEHOLDER

RESULT = {"checkpoint": "c.safetensors", "total_params": 8, "names_sorted": False, "tensors": [
    {"tensor": "fc.bias", "shape": [8], "numel": 8, "mean": 0.5, "std": 0.25, "min": 0.0, "max": 1.0, "skew": 0.0,
     "kurtosis": 3.0, "norm": 1.5, "edges": [0.0, 0.5, 1.0], "counts": [3, 5], "singular_values": None,
     "alpha": None, "stable_rank": None, "spectral_norm": None, "correlation_traps": None}]}
"""A one-tensor inspection: its page includes the page's partials."""


@pytest.fixture(autouse=True)
def fresh_environment():
    """``env.environment`` built anew for each test, and again after it (for the other tests)."""
    env.environment.cache_clear()
    yield
    env.environment.cache_clear()


def _page() -> str:
    """The one-tensor inspection's page, from a new environment."""
    env.environment.cache_clear()
    model = inspect_model(RESULT)
    return render_inspect_html(model, inspect_charts(model), bundle=BUNDLE_PLACEHOLDER)


def _compiles(monkeypatch) -> list[str]:
    """The names of the templates Jinja compiles from source, from now on."""
    names: list[str] = []
    original = jinja2.Environment.compile

    def compile_(self, source, name=None, filename=None, *args, **kwargs):
        names.append(name)
        return original(self, source, name, filename, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", compile_)
    return names


def test_templates_are_compiled_once_then_read_from_the_cache(tmp_path, monkeypatch):
    """A second environment reads every template of the inspect page from the cache and renders the same page."""
    monkeypatch.setenv("WEIGHTREPORT_CACHE_DIR", str(tmp_path))
    compiled = _compiles(monkeypatch)
    first = _page()
    assert "inspect.html" in compiled and len(compiled) > 1  # the page and its partials
    assert len(list(tmp_path.glob(f"jinja2-{jinja2.__version__}-*/*.cache"))) == len(compiled)
    compiled.clear()
    assert _page() == first
    assert compiled == []  # read back, not compiled


def test_a_damaged_cache_file_is_compiled_again(tmp_path, monkeypatch):
    """Cache files cut short or overwritten with garbage are compiled again, and the page is the same."""
    monkeypatch.setenv("WEIGHTREPORT_CACHE_DIR", str(tmp_path))
    first = _page()
    files = sorted(tmp_path.glob("jinja2-*/*.cache"))
    for i, path in enumerate(files):  # cut short; or Jinja's header, then what pickle cannot read
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if i % 2 else data[: len(bc_magic)] + b"garbage")
    compiled = _compiles(monkeypatch)
    assert _page() == first
    assert len(compiled) == len(files)


def test_an_unusable_cache_folder_still_gives_the_page(tmp_path, monkeypatch):
    """A cache folder that cannot be made, or that vanishes before a template is stored, changes nothing."""
    monkeypatch.setenv("WEIGHTREPORT_CACHE_DIR", str(tmp_path / "ok"))
    expected = _page()
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("WEIGHTREPORT_CACHE_DIR", str(blocker / "sub"))  # a directory under a file
    assert _page() == expected
    assert env.environment().bytecode_cache is None
    gone = tmp_path / "gone"
    monkeypatch.setenv("WEIGHTREPORT_CACHE_DIR", str(gone))
    env.environment.cache_clear()
    environment = env.environment()
    assert environment.bytecode_cache is not None
    shutil.rmtree(gone)  # stored templates now fail to be written
    model = inspect_model(RESULT)
    assert render_inspect_html(model, inspect_charts(model), bundle=BUNDLE_PLACEHOLDER) == expected
    assert not gone.exists()
