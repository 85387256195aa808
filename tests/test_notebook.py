"""``weightreport.show`` in a real notebook: executed by nbclient on a Python kernel, then opened in Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-dev-shm-usage"]

TRAIN = """
import torch, weightreport
from weightreport import Collector
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
x, y = torch.randn(64, 6), torch.randint(0, 2, (64,))
wr = Collector(model, RUN, every=2, flush_every=1, optimizer=opt)
for _ in range(12):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    wr.step(loss=loss.item())
"""


@pytest.fixture(scope="module")
def notebook_outputs(tmp_path_factory) -> tuple[Path, list[dict]]:
    """Run a notebook that trains, shows the run while it is open, closes it and shows it again."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    tmp = tmp_path_factory.mktemp("notebook")
    run = tmp / "runs" / "nb-run"
    cells = [
        nbformat.v4.new_code_cell(f"RUN = {str(run)!r}\n" + TRAIN),
        nbformat.v4.new_code_cell("weightreport.show(wr)"),
        nbformat.v4.new_code_cell(f"wr.close()\nshown = weightreport.show(RUN)\nshown.save({str(tmp / 'saved.html')!r})\nshown"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(  # the kernel imports this checkout's weightreport
        p for p in (str(Path(__file__).resolve().parent.parent), before) if p)
    try:
        client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                         resources={"metadata": {"path": str(tmp)}})
        client.execute()
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before
    outputs = []
    for cell in nb.cells[1:]:
        data = [o["data"] for o in cell.outputs if o.get("output_type") == "execute_result"]
        assert data, cell.outputs
        outputs.append(data[0])
    return tmp, outputs


def test_display_is_an_inline_frame(notebook_outputs):
    """Each displayed report is one iframe holding the report page in srcdoc; .save wrote the same page."""
    import html

    tmp, outputs = notebook_outputs
    for data in outputs:
        frame = data["text/html"]
        assert frame.startswith("<iframe") and frame.count("<iframe") == 1
        assert 'sandbox="allow-scripts"' in frame
    running, final = (html.unescape(d["text/html"].split('srcdoc="', 1)[1].split('" style=', 1)[0]) for d in outputs)
    assert "This run is still running" in running
    assert "This run is still running" not in final
    assert final == (tmp / "saved.html").read_text(encoding="utf-8")
    assert "text/plain" in outputs[1] and "weightreport report of run 'nb-run'" in outputs[1]["text/plain"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
@pytest.mark.parametrize("which", [0, 1])
def test_chromium_draws_the_notebook_output(notebook_outputs, which):
    """The output, as a notebook page holds it, draws every chart offline with no console errors."""
    sync_api = pytest.importorskip("playwright.sync_api")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    tmp, outputs = notebook_outputs
    host = tmp / f"host{which}.html"
    host.write_text(f"<!DOCTYPE html><html><body><h1>notebook</h1>{outputs[which]['text/html']}</body></html>",
                    encoding="utf-8")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors, requests = [], []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url)
                if not r.url.startswith(("file:", "data:", "about:")) else None)
        page.goto(host.resolve().as_uri())
        frame = page.frame_locator("iframe")
        frame.locator("body[data-charts-ready=true]").wait_for(state="attached", timeout=60_000)
        charts = frame.locator("div.wr-chart")
        assert charts.count() > 0
        assert frame.locator("div.wr-chart svg").count() == charts.count()
        browser.close()
    assert not errors, errors
    assert not requests, requests
