"""The section and check registries: one list of sections, codes and anchors derived from the checks."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import weightreport.report.analysis.findings as findings_module
from weightreport.cli import main
from weightreport.errors import WeightReportError
from weightreport.report.analysis.checks import ANCHORS, CHECKS, CODES, Check
from weightreport.report.analysis.finding import finding
from weightreport.report.analysis.thresholds import Thresholds, load_thresholds
from weightreport.report.model import analyze, section_charts
from weightreport.report.render.env import templates_dir
from weightreport.report.sections import SECTION_KEYS, SECTIONS
from weightreport.runfmt.reader import load_run

ALL_CODES = ("run_failed, run_incomplete, data_missing, nan_inf, exploding_gradients, vanishing_gradients, update_ratio, outliers, dead_units, "
             "saturated_units, bn_drift, bn_gamma_collapse, overfitting, plateau, loss_spike, "
             "weight_norm_growth")


def test_section_keys_unique_and_templated():
    """Every registered section has a unique key and its own template under templates/sections/."""
    assert len(set(SECTION_KEYS)) == len(SECTIONS)
    for key in SECTION_KEYS:
        assert (templates_dir() / "sections" / f"{key}.html").is_file(), key


def test_model_follows_the_registry(tiny_run):
    """analyze builds one section per registry entry, in order, with the entry's key and title."""
    model = analyze(load_run(tiny_run))
    assert list(model.by_key) == list(SECTION_KEYS)
    for entry, section in zip(SECTIONS, model.sections, strict=True):
        assert (section.key, section.title) == (entry.key, entry.title)
        assert getattr(model, entry.key) is section
    charts = section_charts(model)
    assert list(charts) == [s.key for s in SECTIONS if s.charts is not None]
    with pytest.raises(AttributeError):
        _ = model.no_such_section


def test_every_anchor_is_a_section_key():
    """Every anchor any check declares (so every anchor a finding can carry) is a registered section key."""
    assert ANCHORS and set(ANCHORS) <= set(SECTION_KEYS)
    assert all(c.anchors and c.codes for c in CHECKS)


def test_codes_derived_from_the_checks_in_order():
    """CODES is the checks' declared codes in declaration order, exactly the documented list."""
    assert ", ".join(CODES) == ALL_CODES
    assert findings_module.CODES is CODES
    assert [c for check in CHECKS for c in check.codes if c not in CODES] == []


def test_undeclared_code_is_refused(monkeypatch):
    """A check emitting a code, or an anchor, it did not declare makes find_all raise."""
    def rogue(_data):
        return [finding("plateau", "warning", "", [1], "m", "s", "curves")]

    stats, scalars = pd.DataFrame({"tensor": []}), pd.DataFrame()
    monkeypatch.setattr(findings_module, "CHECKS", (Check(rogue, ("loss_spike",), ("curves",)),))
    with pytest.raises(ValueError, match="rogue emitted code 'plateau'"):
        findings_module.find_all(stats, scalars)
    monkeypatch.setattr(findings_module, "CHECKS", (Check(rogue, ("plateau",), ("stats",)),))
    with pytest.raises(ValueError, match="anchor 'curves'"):
        findings_module.find_all(stats, scalars)


def test_ignore_refuses_unknown_code_from_pyproject(tmp_path):
    """An unknown code in a pyproject.toml's ignore is one error naming the code, the file and every code."""
    (tmp_path / "pyproject.toml").write_text("[tool.weightreport]\nignore = ['plateu']\n")
    with pytest.raises(WeightReportError) as info:
        load_thresholds(start=tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and str(tmp_path / "pyproject.toml") in msg
    assert f"unknown finding code 'plateu' in ignore; the codes are {ALL_CODES}" in msg


def test_ignore_refuses_unknown_code_in_python():
    """Thresholds built in Python refuse an unknown ignore code, and accept every known one."""
    with pytest.raises(WeightReportError, match="unknown finding codes 'a', 'b' in ignore"):
        Thresholds(ignore=("a", "dead_units", "b"))
    assert Thresholds(ignore=CODES).ignore == CODES


def test_check_cli_refuses_unknown_code(tiny_run, tmp_path, capsys):
    """weightreport check --config with an unknown ignore code exits 2 with one line naming the file."""
    bad = tmp_path / "bad.toml"
    bad.write_text("ignore = ['plateu']\n")
    assert main(["check", str(tiny_run), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}: unknown finding code 'plateu' in ignore" in err
    assert ALL_CODES in err


def test_check_cli_unknown_code_no_traceback(tiny_run, tmp_path):
    """The installed entry point prints the unknown-code error as one line, without a traceback."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[tool.weightreport]\nignore = ['plateu']\n")
    proc = subprocess.run([sys.executable, "-m", "weightreport.cli", "check", str(tiny_run), "--config", str(bad)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "'plateu'" in proc.stderr
