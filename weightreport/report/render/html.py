"""ReportModel + charts → one self-contained HTML page.

The page inlines the Vega/Vega-Lite/vega-embed bundle once (``vl_convert``), every
chart spec and dataset as escaped JSON, the CSS and a small script; a
Content-Security-Policy forbids any load from elsewhere. Charts are embedded with
``ast: true`` so Vega's expression interpreter runs them without ``eval``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from pathlib import Path
from typing import TYPE_CHECKING

from markupsafe import Markup

from weightreport.report.charts import Chart
from weightreport.report.render.cache import cache_dir
from weightreport.report.render.env import environment
from weightreport.report.render.picker import Picker, picker

if TYPE_CHECKING:  # the model's sections load Altair and pandas, which the checkpoint page does without
    from weightreport.report.model import ReportModel

CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")
BUNDLE_PLACEHOLDER = "/* vega bundle */"


@functools.lru_cache(maxsize=1)
def vega_bundle() -> str:
    """vl-convert's bundle of Vega, Vega-Lite and vega-embed (sets ``window.vegaEmbed``).

    vl-convert builds the bundle anew on every call (about 1.3–3.7 s on a 2-core machine),
    so it is kept on disk per vl-convert version (``bundle_cache``) and read from there
    afterwards. A cache that cannot be read or written is skipped: the bundle is built.
    """
    path = bundle_cache()
    if path is not None:
        try:
            cached = path.read_text(encoding="utf-8")
            if "vegaEmbed" in cached:  # else damaged: built again below
                return cached
        except (OSError, UnicodeDecodeError):
            pass
    import vl_convert

    bundle = vl_convert.javascript_bundle()
    bundle = bundle.replace("</script", "<\\/script").replace("<!--", "<\\!--")
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(bundle, encoding="utf-8")
            os.replace(tmp, path)  # whole or absent: concurrent builds never read half a file
        except OSError:
            pass
    return bundle


def bundle_cache() -> Path | None:
    """Where the bundle of the installed vl-convert is cached: ``$WEIGHTREPORT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/weightreport``, else ``~/.cache/weightreport``; None without vl-convert's
    version (not installed as a distribution)."""
    try:
        version = importlib.metadata.version("vl-convert-python")
    except importlib.metadata.PackageNotFoundError:
        return None
    return cache_dir() / f"vega-bundle-vl-convert-{version}.js"


def chart_context(charts: dict[str, list[Chart]]) -> tuple[dict, dict, dict]:
    """Template views of the charts, the spec table ``{id: {spec, data}}``, and the datasets."""
    views, specs, datasets = {}, {}, {}
    for key, lst in charts.items():
        views[key] = [{"id": c.id, "title": c.title, "wide": c.wide, "layered": c.layered,
                        "glance": c.glance, "svg": None}
                      for c in lst]
        for c in lst:
            specs[c.id] = {"spec": c.spec, "data": sorted(c.datasets)}
            datasets.update(c.datasets)
    return views, specs, dict(sorted(datasets.items()))


def selectors(sections, charts: dict[str, list[Chart]]) -> dict[str, Picker | None]:
    """Per section, its layer picker (None when no chart of it follows a layer)."""
    out = {}
    for section in sections:
        layered = any(c.layered for c in charts.get(section.key, []))
        out[section.key] = picker(getattr(section, "layers", ())) if layered else None
    return out


def render_html(model: ReportModel, charts: dict[str, list[Chart]], bundle: str | None = None) -> str:
    """The report page as a string.

    Args:
        model: the analysed run.
        charts: ``section_charts(model)``.
        bundle: the JavaScript bundle to inline (default: vl-convert's; tests pass a placeholder).
    """
    views, specs, datasets = chart_context(charts)
    js = vega_bundle() if bundle is None else bundle
    return environment().get_template("base.html").render(
        report=model, sections=model.sections, charts=views, specs=specs, datasets=datasets,
        selectors=selectors(model.sections, charts),
        bundle=Markup(js), csp=CSP, mode="html")
