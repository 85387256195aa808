"""The Vega bundle is built once per vl-convert version and read from the cache afterwards."""

from __future__ import annotations

import vl_convert

from weightreport.report.render import html


def test_bundle_is_cached_per_version_and_rebuilt_when_damaged(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTREPORT_CACHE_DIR", str(tmp_path))
    path = html.bundle_cache()
    assert path.parent == tmp_path and path.name.startswith("vega-bundle-vl-convert-")
    html.vega_bundle.cache_clear()
    built = html.vega_bundle()
    assert path.read_text(encoding="utf-8") == built and "vegaEmbed" in built and "</script" not in built
    calls = []
    monkeypatch.setattr(vl_convert, "javascript_bundle", lambda: calls.append(1) or "window.vegaEmbed=1")
    html.vega_bundle.cache_clear()
    assert html.vega_bundle() == built and not calls  # read from the cache, not built
    path.write_text("half a fi", encoding="utf-8")
    html.vega_bundle.cache_clear()
    assert html.vega_bundle() == "window.vegaEmbed=1" and calls == [1]  # damaged: built again
    html.vega_bundle.cache_clear()


def test_an_unwritable_cache_still_gives_the_bundle(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("WEIGHTREPORT_CACHE_DIR", str(blocker / "sub"))  # a directory under a file
    monkeypatch.setattr(vl_convert, "javascript_bundle", lambda: "window.vegaEmbed=2")
    html.vega_bundle.cache_clear()
    assert html.vega_bundle() == "window.vegaEmbed=2"
    html.vega_bundle.cache_clear()
