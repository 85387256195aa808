"""The overview of a big run: findings grouped by code and severity, short, and tables that scale."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from conftest import HOSTILE_LAYER

from weightreport.report.analysis.finding import finding
from weightreport.report.analysis.findings import run_findings
from weightreport.report.analysis.metrics import goal, key_scalars
from weightreport.report.analysis.summary import summarize
from weightreport.report.model import analyze, section_charts
from weightreport.report.render.env import LONG_TABLE, break_at_dots
from weightreport.report.render.html import BUNDLE_PLACEHOLDER, render_html
from weightreport.report.render.markdown import render_summary_md
from weightreport.runfmt.reader import load_run

ROW = re.compile(r'<tr data-code="([^"]+)" data-severity="([^"]+)">.*?<td class="n">([\d,]+|run)</td>'
                 r'\s*<td class="wr-what">(.*?)</td>', re.S)


def _html(run_dir) -> str:
    model = analyze(load_run(run_dir))
    return render_html(model, section_charts(model), bundle=BUNDLE_PLACEHOLDER)


def _section(html: str, key: str) -> str:
    return html.split(f'<section class="wr-section" id="{key}">')[1].split("</section>")[0]


@pytest.fixture(scope="module")
def big_html(big_run) -> str:
    """The big run's page (JS bundle replaced)."""
    return _html(big_run)


def test_big_run_is_big(big_run):
    """The fixture is the run the issue is about: 120+ parameter tensors, dozens of dead-unit findings."""
    found = run_findings(load_run(big_run))
    assert analyze(load_run(big_run)).overview.tensors >= 120
    assert sum(f.code == "dead_units" for f in found) >= 30


def test_one_row_per_code_and_severity(big_run, big_html):
    """The findings table has exactly one row per (code, severity), with the number of distinct tensors found."""
    oracle: dict[tuple[str, str], set[str]] = defaultdict(set)
    for f in run_findings(load_run(big_run)):
        oracle[(f.code, f.severity)].add(f.tensor)
    rows = ROW.findall(_section(big_html, "overview"))
    assert len(rows) == len(oracle) >= 3
    got = {(code, sev): count for code, sev, count, _ in rows}
    assert len(got) == len(rows)
    for key, tensors in oracle.items():
        assert got[key] == (f"{len(tensors - {''}):,}" if tensors - {""} else "run"), key
    sev_rank = [("error", "warning", "info").index(sev) for _, sev, _, _ in rows]
    assert sev_rank == sorted(sev_rank)


def test_grouped_row_names_the_worst(big_run, big_html):
    """The dead-unit warning row names the three layers with the largest dead fraction, and links to the worst."""
    run = load_run(big_run)
    act = run.table("stats")
    act = act[(act["kind"] == "activation") & (act["step"] == act["step"].max())]
    frac = act.assign(frac=act["dead_units"] / act["units"])
    warn = frac[(frac["frac"] >= 0.25) & (frac["frac"] < 0.9)].sort_values(["frac", "tensor"], ascending=[False, True])
    expected = warn["tensor"].head(3).tolist()
    row = next(r for r in ROW.findall(big_html) if r[:2] == ("dead_units", "warning"))
    assert row[2] == str(len(warn))
    named = re.findall(r'data-layer="([^"]*)"', row[3].split("<details")[0])
    assert [n.replace("&lt;", "<").replace("&gt;", ">") for n in named] == expected
    assert f"{len(warn)} layers have dead units; worst:" in row[3]
    assert f"and {len(warn) - 3} more" in row[3] and row[3].count("<li>") == len(warn) - 3
    group = next(g for g in analyze(run).overview.groups if (g.code, g.severity) == ("dead_units", "warning"))
    assert group.layer == expected[0] and group.anchor == "activations"
    assert [w.text for w in group.worst] == [f"{v:.0%}" for v in warn["frac"].head(3)]


def test_dots_filter_escapes():
    """The dots filter escapes first, then adds <wbr> after dots: a <script> in a name stays text."""
    out = break_at_dots("a.<script>x()</script>.b&c")
    assert str(out) == "a.<wbr>&lt;script&gt;x()&lt;/script&gt;.<wbr>b&amp;c"
    assert str(break_at_dots("plain")) == "plain"


def test_hostile_name_stays_text(big_html):
    """The big run's tensor named with a <script> tag appears only escaped, broken at its dots."""
    assert HOSTILE_LAYER not in big_html and "<script>alert" not in big_html
    assert "layer1.<wbr>&lt;script&gt;alert(1)&lt;/script&gt;.<wbr>conv" in big_html


def test_filter_box_on_long_tables(big_html, tiny_run):
    """Tables over LONG_TABLE rows (statistics, structure) get a filter box and a bounded scroll; short ones do not."""
    for key in ("stats", "structure"):
        part = _section(big_html, key)
        assert part.count("<tbody>") == 1 and part.split("<tbody>")[1].count("<tr") > LONG_TABLE
        assert 'class="wr-filter"' in part and "wr-scroll wr-tall" in part
    small = _html(tiny_run).split("<main>")[1].split("</main>")[0]
    assert 'class="wr-filter"' not in small and "wr-tall" not in small


def test_structure_is_its_own_section(big_html):
    """The module table is in the last section, not the overview, with each module's last name and full path."""
    assert "wr-structure" not in _section(big_html, "overview")
    part = _section(big_html, "structure")
    assert '<tr data-filter="layer4.2.bn3 BatchNorm2d"><td class="name" style="padding-left: 22px" ' \
           'title="layer4.2.bn3"><span class="wr-short">bn3</span>' in part


def test_markdown_summary_grouped(big_run):
    """The Markdown summary has one findings line per (code, severity) and stays short; JSON keeps every finding."""
    s = summarize(load_run(big_run))
    text = render_summary_md(s)
    lines = [ln for ln in text.splitlines() if re.match(r"\| \S+ \| `", ln)]
    assert len(lines) == len({(f.code, f.severity) for f in s.overview.findings})
    assert len(text.splitlines()) <= 60
    data = s.to_dict()
    assert len(data["findings"]) == len(run_findings(load_run(big_run))) > len(data["groups"])
    assert sum(g["findings"] for g in data["groups"]) == len(data["findings"])
    assert all({"measure", "worse"} <= set(f) for f in data["findings"])


def test_metric_goals():
    """Best is the minimum for losses, the maximum for accuracy-like names; other names show their range."""
    assert [goal(n) for n in ("loss", "val_error", "ppl", "val_acc", "f1", "auc", "precision", "recall",
                              "lr", "temperature")] == ["min"] * 3 + ["max"] * 5 + ["none"] * 2
    import pandas as pd

    rows = key_scalars(pd.DataFrame({"step": [1, 2, 3] * 2, "name": ["temp"] * 3 + ["val_acc"] * 3,
                                     "value": [3.0, 1.0, 2.0, 0.5, 0.9, 0.8]}))
    temp, acc = (next(r for r in rows if r.name == n) for n in ("temp", "val_acc"))
    assert (temp.best, temp.min, temp.max, temp.last) == (None, 1.0, 3.0, 2.0)
    assert (acc.best, acc.best_step, acc.goal) == (0.9, 2, "max")


def test_measure_must_be_a_value():
    """A check naming a measure that is not one of its values is refused (a bug in the check)."""
    with pytest.raises(ValueError, match="measure 'frac' is not one of its values"):
        finding("dead_units", "warning", "x", [1], "m", "s", "activations", measure="frac", fraction=0.5)
    f = finding("vanishing_gradients", "warning", "x", [1], "m", "s", "dynamics", measure="growth",
                worse="lower", growth=0.01)
    assert f.worst == 0.01 and f.badness == -0.01


def test_a_growth_to_zero_is_written_as_such():
    """A gradient that fell to exactly 0 is written "to exactly 0" beside its layer, not "0×"."""
    from weightreport.report.analysis.finding_groups import measure_text

    def vanished(growth):
        return finding("vanishing_gradients", "warning", "x", [1], "m", "s", "dynamics", measure="growth",
                       worse="lower", growth=growth)

    assert measure_text(vanished(0.0)) == "to exactly 0" and measure_text(vanished(0.00123)) == "0.00123×"


def test_run_findings_come_first(xss_run):
    """A failed run's run_failed row comes before the other errors, and its tensor count says "run"."""
    rows = ROW.findall(_html(xss_run))
    assert rows[0][:3] == ("run_failed", "error", "run")
    assert ("nan_inf", "error") in {r[:2] for r in rows[1:]}


def test_every_layer_code_has_a_group_phrase():
    """Every code a check can emit for many tensors has a lead sentence for its group."""
    from weightreport.report.analysis.checks import CODES
    from weightreport.report.analysis.checks_run import RUN_CODES
    from weightreport.report.analysis.finding_groups import PHRASES

    phrased = {k if isinstance(k, str) else k[0] for k in PHRASES}
    assert set(CODES) - set(RUN_CODES) - {"overfitting", "plateau", "loss_spike"} == phrased


def test_duration_filter():
    """Wall time reads as seconds, minutes or hours; a missing one is a dash."""
    from weightreport.report.render.env import fmt_duration

    assert [fmt_duration(v) for v in (0.421, 12.34, 245, 7380, None, float("nan"))] == \
        ["0.421 s", "12.3 s", "4 min 05 s", "2 h 03 min", "—", "—"]


def test_compile_time_is_told_apart(tiny_run, tmp_path):
    """A run whose collector compiled its kernels gives its share without them, in the overview
    and the Markdown summary; a run that compiled nothing, or predates ``compile_s``, says nothing of it."""
    import json
    import shutil

    from weightreport.runfmt.schema import MANIFEST

    def with_overhead(name, overhead):
        run_dir = tmp_path / name
        shutil.copytree(tiny_run, run_dir)
        manifest = json.loads((run_dir / MANIFEST).read_text())
        manifest["overhead"] = overhead
        (run_dir / MANIFEST).write_text(json.dumps(manifest))
        return run_dir

    compiled = with_overhead("compiled", {"collector_s": 5.0, "training_s": 1.0, "fraction": 5 / 6,
                                          "compile_s": 4.0})
    overview = _section(_html(compiled), "overview")
    assert "(83 % weightreport, 50 % without compiling)" in overview
    assert "4 s of it compiled its statistics kernels on their first use" in overview
    summary = render_summary_md(summarize(load_run(compiled)))
    assert "(83 % of the run; 4 s of it compiling its kernels, once)" in summary
    for name, extra in (("cached", {"compile_s": 0.0}), ("older", {})):
        run_dir = with_overhead(name, {"collector_s": 1.0, "training_s": 1.0, "fraction": 0.5, **extra})
        overview = _section(_html(run_dir), "overview")
        assert "(50 % weightreport)" in overview and "compil" not in overview
        assert "compiling" not in render_summary_md(summarize(load_run(run_dir)))
