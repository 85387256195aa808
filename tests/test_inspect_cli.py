"""``weightreport inspect`` through the CLI: HTML and JSON outputs, escaping, and refusal of unsafe pickles."""

from __future__ import annotations

import json
import os

import torch
from torch import nn

from weightreport.cli import main
from weightreport.inspect.analyse import inspect_checkpoint
from weightreport.inspect.charts import inspect_charts
from weightreport.inspect.model import inspect_model
from weightreport.inspect.page import render_inspect_html
from weightreport.report.render.html import BUNDLE_PLACEHOLDER

XSS = "</script><img src=x onerror=alert(1)>"


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _saved(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 4))
    path = tmp_path / "model.pt"
    torch.save({"model": model.state_dict(), "epoch": 1}, path)
    return model, path


def test_inspect_writes_html_and_json(tmp_path, capsys):
    """inspect writes a self-contained page and JSON whose tensors match the state dict."""
    model, path = _saved(tmp_path)
    out, js = tmp_path / "out" / "m.html", tmp_path / "m.json"
    assert main(["inspect", str(path), "-o", str(out), "--json", str(js)]) == 0
    assert capsys.readouterr().out.split() == [str(out), str(js)]
    page = out.read_text(encoding="utf-8")
    for anchor in ("tensors", "histograms", "spectra", "quality", "traps"):
        assert f'id="{anchor}"' in page
    assert "<script src" not in page and "http-equiv=\"Content-Security-Policy\"" in page
    data = json.loads(js.read_text())
    state = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    assert [t["tensor"] for t in data["tensors"]] == list(state)
    for t in data["tensors"]:
        assert t["numel"] == state[t["tensor"]].numel()
        assert abs(t["mean"] - state[t["tensor"]].double().mean().item()) < 1e-9
        assert {"shape", "std", "min", "max", "skew", "kurtosis", "alpha", "stable_rank"} <= set(t)


def test_inspect_is_deterministic(tmp_path):
    """Two inspections of one checkpoint give byte-identical HTML and JSON."""
    _, path = _saved(tmp_path)
    for name in ("a", "b"):
        assert main(["inspect", str(path), "-o", str(tmp_path / f"{name}.html"), "--json", str(tmp_path / f"{name}.json")]) == 0
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_inspect_escapes_tensor_names(tmp_path):
    """A tensor named with an HTML/JS payload appears only escaped in the page."""
    path = tmp_path / "x.pt"
    torch.save({XSS: torch.randn(6, 5), "ok": torch.randn(3)}, path)
    model = inspect_model(inspect_checkpoint(path))
    page = render_inspect_html(model, inspect_charts(model), bundle=BUNDLE_PLACEHOLDER)
    assert XSS not in page and "<img" not in page
    assert "&lt;/script&gt;&lt;img" in page


def test_malicious_pickle_exits_2_without_running(tmp_path, capsys):
    """A pickle that would run a shell command gives exit 2 and one line, and the command never runs."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2, 2), "payload": _Exploit(marker)}, path)
    assert main(["inspect", str(path), "-o", str(tmp_path / "evil.html")]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "evil.html").exists()


def test_inspect_bad_input_exits_2(tmp_path):
    """A missing checkpoint and a file of garbage both give exit 2."""
    assert main(["inspect", str(tmp_path / "missing.pt")]) == 2
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"garbage")
    assert main(["inspect", str(junk), "-o", str(tmp_path / "j.html")]) == 2
