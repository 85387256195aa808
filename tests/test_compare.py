"""``weightreport compare``: one report over several runs (the digits CNN at three learning rates)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from weightreport.cli import main
from weightreport.compare.sweep_page import build_compare
from weightreport.report.render.env import fmt_num
from weightreport.runfmt.reader import load_run

RATES = (0.01, 0.05, 0.2)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> list[Path]:
    """The demo's CNN trained one epoch at each of three learning rates."""
    pytest.importorskip("sklearn")
    from weightreport.demo import train_cnn

    root = tmp_path_factory.mktemp("sweep")
    return [train_cnn(root / f"lr{lr}", epochs=1, lr=lr, name=f"cnn-lr{lr}") for lr in RATES]


def _last(run: Path, name: str) -> float:
    s = load_run(run).table("scalars")
    s = s[s["name"] == name].sort_values("step", kind="stable")
    return float(s["value"].iloc[-1])


def test_html_names_every_run_with_its_numbers(sweep, tmp_path):
    """Each run's name, learning rate and final losses are in the page, and only lr differs in the config."""
    page = build_compare(sweep, output=tmp_path / "c.html").text
    data = build_compare(sweep, fmt="json").text
    sw = json.loads(data)
    assert sw["config_keys"] == ["lr"]
    for run, lr in zip(sweep, RATES, strict=True):
        assert f"demo-cnn-lr{lr}" in page
        assert f"<td>{lr}</td>" in page
        for metric in ("loss", "val_loss", "val_acc"):
            assert fmt_num(_last(run, metric)) in page, (run, metric)
    assert len(sw["runs"]) == 3 and [r["label"] for r in sw["runs"]] == [f"demo-cnn-lr{lr}" for lr in RATES]
    assert sw["shared_tensors"] and not sw["not_shared"]
    finals = {(f["tensor"], f["run"]): f for f in sw["finals"]}
    assert len(finals) == 3 * len(sw["shared_tensors"])


def test_glance_values_are_each_runs_last_snapshot(sweep):
    """A heatmap cell is the tensor's update ratio and norm ratio at that run's last snapshot."""
    sw = json.loads(build_compare(sweep, fmt="json").text)
    for run in sweep:
        stats = load_run(run).table("stats")
        p = stats[stats["kind"] == "param"].sort_values("step", kind="stable")
        label = load_run(run).name
        for tensor, g in p.groupby("tensor"):
            cell = next(f for f in sw["finals"] if f["tensor"] == tensor and f["run"] == label)
            assert cell["update_ratio"] == pytest.approx(float(g["update_ratio"].iloc[-1]), rel=1e-12)
            rms = g["norm"] / g["numel"] ** 0.5
            ref = g["norm"][rms >= 1e-3]
            if len(ref):  # from the first snapshot with a scale of its own (a bias born at 0 has none)
                assert cell["measured"]
                assert cell["norm_ratio"] == pytest.approx(float(g["norm"].iloc[-1] / ref.iloc[0]), rel=1e-12)
            else:
                assert not cell["measured"] and cell["norm_ratio"] is None


def test_markdown_fits_a_comment(sweep, capsys):
    """The Markdown has one table row per run with its final loss, and stays short."""
    assert main(["compare", *map(str, sweep), "--format", "md"]) == 0
    md = capsys.readouterr().out
    rows = [line for line in md.splitlines() if line.startswith("| demo-cnn-lr")]
    assert len(rows) == 3
    for row, run in zip(rows, sweep, strict=True):
        assert fmt_num(_last(run, "loss")) in row
    assert len(md) < 4000


def test_deterministic(sweep, tmp_path):
    """The same runs give the same bytes."""
    a = build_compare(sweep, output=tmp_path / "a.html").text
    b = build_compare(sweep, output=tmp_path / "b.html").text
    assert a == b


def test_different_architectures_compare_what_they_share(sweep, tmp_path):
    """A run with an extra layer is compared on the shared tensors; its own are listed."""
    from weightreport.demo import train_mlp

    mlp = train_mlp(tmp_path / "mlp", epochs=1)
    sw = json.loads(build_compare([sweep[0], mlp], fmt="json").text)
    cnn_names = set(load_run(sweep[0]).table("stats")["tensor"])
    mlp_names = set(load_run(mlp).table("stats")["tensor"])
    assert set(sw["shared_tensors"]) == {t for t in cnn_names & mlp_names
                                         if t in set(load_run(mlp).table("stats").query("kind == 'param'")["tensor"])}
    listed = {t for names in sw["not_shared"].values() for t in names}
    assert listed, "each run's own tensors are listed"
    assert not listed & set(sw["shared_tensors"])


@pytest.mark.parametrize("args, says", [
    (lambda s, t: [str(s[0])], "got 1; for one run use `weightreport build RUN`"),
    (lambda s, t: [str(s[0]), str(t / "nope")], "no such run directory"),
    (lambda s, t: [str(s[0]), str(s[0])], "is given twice"),
    (lambda s, t: [str(s[0]), str(t)], "is not a weightreport run"),
])
def test_bad_input_one_line_exit_2(sweep, tmp_path, capsys, args, says):
    """A single run, a missing path, a repeated run or a folder that is not a run: one line, exit 2."""
    (tmp_path / "reports").mkdir()
    code = main(["compare", *args(sweep, tmp_path), "-o", str(tmp_path / "reports" / "c.html")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and says in err, err
    assert not (tmp_path / "reports" / "c.html").exists()


def test_many_runs_keep_their_order_and_labels(sweep, tmp_path):
    """Copies of one run named alike are told apart by their paths, in the order given."""
    copies = []
    for i in range(4):
        dst = tmp_path / f"copy{i}" / "same"
        shutil.copytree(sweep[0], dst)
        copies.append(dst)
    sw = json.loads(build_compare(copies, fmt="json").text)
    assert [r["label"] for r in sw["runs"]] == [str(c) for c in copies]
    page = build_compare(copies, output=tmp_path / "c.html").text
    assert len(re.findall(r"<tr><td title=", page)) == 4
