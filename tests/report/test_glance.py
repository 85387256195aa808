"""The network at a glance: its grid cells against a pandas oracle, its rows, bounds and sentences."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from synthetic import Spec, small_spec, write_run
from test_chart_honesty import axis_labels, svg_of

from weightreport.report.analysis import layer_grid as lg
from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.build import build_report
from weightreport.report.charts.common import Datasets, dumps
from weightreport.report.charts.layer_grid import decade_span
from weightreport.report.sections import glance
from weightreport.runfmt.reader import load_run
from weightreport.runfmt.schema import TABLES_DIR

SNAPSHOTS = 130
"""More snapshots than step columns (so cells are binned), fewer than the stats sampling limit."""


@pytest.fixture(scope="module")
def binned_run(tmp_path_factory):
    """A small run with 130 snapshots, a NaN in fc1.weight at the last one."""
    spec = small_spec("binned")
    spec.snapshots, spec.nan_tensor, spec.probes, spec.heatmaps = SNAPSHOTS, "fc1.weight", False, False
    return write_run(tmp_path_factory.mktemp("runs") / "binned", spec)


def _section(path) -> glance.Glance:
    return glance.build(RunTables(load_run(path)))


def _oracle(stats: pd.DataFrame, value: pd.Series, count: int, first: int, span: int) -> pd.DataFrame:
    """Per tensor and column: the last non-null value and whether any row held NaN or Inf."""
    df = stats.assign(value=value)
    # Column k holds the steps s with k·span ≤ (s − first)·count < (k + 1)·span.
    df["bin"] = pd.cut((df["step"] - first) * count, bins=[k * span for k in range(count + 1)],
                       right=False, labels=False)
    df["bad"] = (df["nan_count"] + df["inf_count"]) > 0
    df = df.sort_values(["tensor", "step"])
    value = df.dropna(subset=["value"]).groupby(["tensor", "bin"])["value"].last()
    bad = df.groupby(["tensor", "bin"])["bad"].any()
    out = pd.concat([value, bad], axis=1).reset_index()
    return out[out["value"].notna() | out["bad"]].sort_values(["tensor", "bin"]).reset_index(drop=True)


def _compare(section: glance.Glance, key: str, expected: pd.DataFrame) -> None:
    sig = next(s for s in section.signals if s.type.key == key)
    got = sig.cells.sort_values(["tensor", "bin"]).reset_index(drop=True)
    got = got[got["value"].notna() | got["bad"]].reset_index(drop=True)
    assert got["tensor"].tolist() == expected["tensor"].tolist(), key
    assert got["bin"].astype(int).tolist() == expected["bin"].astype(int).tolist(), key
    assert got["bad"].astype(bool).tolist() == expected["bad"].astype(bool).tolist(), key
    np.testing.assert_allclose(got["value"].to_numpy(float), expected["value"].to_numpy(float), rtol=1e-12,
                               equal_nan=True, err_msg=key)


def test_cells_equal_a_pandas_oracle(binned_run):
    """Every signal's cells equal an oracle binned and reduced by pandas from the whole stats table."""
    section = _section(binned_run)
    stats = load_run(binned_run).table("stats")
    steps = np.sort(stats["step"].unique())
    count, first, span = 100, int(steps[0]), int(steps[-1] - steps[0] + 1)
    assert (section.bins.count, section.bins.first, section.bins.span) == (count, first, span)
    p, g = stats[stats["kind"] == "param"], stats[stats["kind"] == "grad"]
    a = stats[stats["kind"].isin(["activation", "bn_output"])]
    first_norm = p.sort_values("step").groupby("tensor")["norm"].transform("first")  # no weight starts near 0 here
    units = a[a["units"] > 0]
    dead = (units["dead_units"].fillna(0) + units["saturated_units"].fillna(0)) / units["units"]
    _compare(section, "update_ratio", _oracle(p, p["update_ratio"], count, first, span))
    _compare(section, "grad_norm", _oracle(g, g["norm"], count, first, span))
    _compare(section, "weight_norm", _oracle(p, p["norm"] / first_norm, count, first, span))
    _compare(section, "output_std", _oracle(a, a["std"], count, first, span))
    _compare(section, "dead", _oracle(units, dead, count, first, span))


def test_a_nan_cell_is_kept_and_drawn_distinctly(binned_run):
    """The snapshot with a NaN makes its cell bad; the chart data lists it and the legend names NaN/Inf."""
    section = _section(binned_run)
    sig = next(s for s in section.signals if s.type.key == "weight_norm")
    bad = sig.cells[sig.cells["bad"]]
    assert bad[["tensor", "bin"]].values.tolist() == [["fc1.weight", 99]]
    record = next(r for r in glance._heatmap_records(sig, section.bins.count) if r["tensor"] == "fc1.weight")
    assert record["bad"] == [99]
    charts = glance.glance_charts(section, Datasets())
    spec = dumps(charts[2].spec)
    assert '"domain":["NaN/Inf"]' in spec and '"range":["#d6007e"]' in spec
    assert '"domain":["NaN/Inf"]' not in dumps(charts[1].spec)  # the gradients held no NaN: no legend entry


def test_weights_born_at_zero_are_measured_from_a_real_scale():
    """A bias at zero gives blank cells until its RMS reaches 1e-3, then ratios to that snapshot."""
    df = pd.DataFrame({"tensor": ["b"] * 4, "step": [0, 1, 2, 3], "norm": [0.0, 1e-6, 0.02, 0.04],
                       "numel": [4] * 4, "update_ratio": [np.nan, np.inf, 1e4, 1.0],
                       "nan_count": [0] * 4, "inf_count": [0] * 4})
    w = lg.weight_norm(df)
    assert w[["step", "value"]].values.tolist() == [[2, 1.0], [3, 2.0]]
    u = lg.update_ratio(df)
    assert u[["step", "value"]].values.tolist() == [[3, 1.0]]


def test_zero_on_a_log_scale_gets_its_own_legend_entry(binned_run):
    """An exact zero (a gradient that vanished) is drawn grey with a legend entry "0", not dropped."""
    section = _section(binned_run)
    sig = next(s for s in section.signals if s.type.key == "grad_norm")
    sig.cells.loc[sig.cells.index[0], "value"] = 0.0
    charts = glance.glance_charts(section, Datasets())
    assert '"domain":["0"]' in dumps(charts[1].spec)


def test_depth_profile_labels_fall_every_same_number_of_decades(binned_run):
    """Each log panel of the depth profile labels its decades at an even spacing, the last one too,
    and no label repeats (Vega's overlap removal had left 1e-4, 1e-2, 1e-1)."""
    section = _section(binned_run)
    sig = next(s for s in section.signals if s.type.scale != "fraction")
    sig.last.loc[sig.last.index[0], "value"] = 3e-7  # the panel spans about six decades
    profile = glance.glance_charts(section, Datasets())[-1]
    svg = svg_of(profile.full_spec())
    log_axes = [labels for labels in axis_labels(svg) if labels and all("e" in x for x in labels)]
    assert log_axes
    for labels in log_axes:
        exponents = [int(x.split("e")[1]) for x in labels]
        gaps = set(np.diff(exponents))
        assert len(labels) == len(set(labels)) >= 2 and len(gaps) == 1 and gaps.pop() > 0, labels


def test_decade_span_labels_evenly_and_encloses_the_values():
    """decade_span encloses the values in whole decades and spaces at most three labels evenly."""
    assert decade_span([2e-5, 0.3]) == (-5, 1, 3)
    assert decade_span([0.02, 0.05]) == (-2, -1, 1)
    assert decade_span([None, 0.0]) == (-1, 0, 1)
    lo, hi, every = decade_span([1e-12, 10.0])
    assert lo == -12 and hi >= 1 and (hi - lo) % every == 0 and (hi - lo) // every + 1 <= 3


def test_rows_in_model_order(binned_run):
    """Parameter rows follow the model's definition order, module rows likewise, grouped by module."""
    section = _section(binned_run)
    rows = {s.type.key: s.rows for s in section.signals}
    assert rows["grad_norm"] == ["conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "fc1.weight",
                                 "fc1.bias", "fc2.weight", "fc2.bias"]
    assert rows["output_std"] == ["conv1", "bn1", "fc1", "fc2"]
    assert section.profile_rows[:3] == ["conv1", "conv1.weight", "conv1.bias"]
    groups = next(s for s in section.signals if s.type.key == "grad_norm").groups
    assert [(g.label, g.start, g.end) for g in groups] == [("conv1", 0, 2), ("bn1", 2, 4), ("fc1", 4, 6),
                                                           ("fc2", 6, 8)]


def test_groups_split_sibling_blocks_alike():
    """A transformer's embeddings stay one group while its encoder splits into its layers."""
    names = ["emb.word.weight", "emb.pos.weight", "emb.norm.weight"]
    names += [f"enc.layer.{i}.{m}.weight" for i in range(4) for m in ("q", "k", "v", "out", "ff1", "ff2")]
    groups = lg.module_groups(names, set(names), limit=6)
    assert [(g.label, g.end - g.start) for g in groups] == [("emb", 3)] + [(f"enc.layer.{i}", 6) for i in range(4)]


def test_groups_too_many_to_split_become_ranges_of_children():
    """A 24-layer encoder under a limit of 21 groups is labelled by ranges of its layers (not one
    ``encoder.layer`` group), the groups stay within the limit and cover every row once, in order."""
    names = ["emb.word.weight", "emb.pos.weight"]
    names += [f"encoder.layer.{i}.{m}.weight" for i in range(24) for m in ("q", "k", "v", "o", "ff1", "ff2")]
    groups = lg.module_groups(names, set(names), limit=21)
    assert len(groups) <= 21 and groups[0].start == 0 and groups[-1].end == len(names)
    assert all(a.end == b.start for a, b in itertools.pairwise(groups))
    labels = [g.label for g in groups]
    assert labels[0] == "emb" and "encoder.layer" not in labels
    assert labels[1:3] == ["encoder.layer.0–1", "encoder.layer.2–3"] and labels[-1] == "encoder.layer.22–23"
    for g in groups[1:]:  # each range label names exactly the layers it holds
        lo, hi = (int(x) for x in g.label.removeprefix("encoder.layer.").split("–"))
        assert {n.split(".")[2] for n in names[g.start:g.end]} == {str(i) for i in range(lo, hi + 1)}
    eight = ["emb.word.weight"] + [f"encoder.layer.{i}.{m}.{p}.weight" for i in range(8)
                                   for m in ("attention", "intermediate", "output") for p in "ab"]
    assert [g.label for g in lg.module_groups(eight, set(eight), limit=12)] == ["emb"] + [
        f"encoder.layer.{i}" for i in range(8)]  # named children (attention, …) are not made ranges


def test_row_blocks_keep_modules_and_bound_the_rows():
    """Rows are consecutive runs in model order, at most the limit: modules whole where they fit, a flat list cut."""
    names = [f"enc.layer.{i}.{m}.{p}" for i in range(25) for m in ("q", "k", "v", "o", "ln")
             for p in ("weight", "bias")]
    for limit in (40, 120, 240):
        blocks = lg.row_blocks(names, set(names), limit)
        assert len(blocks) <= limit and [b.start for b in blocks] == [0, *(b.end for b in blocks[:-1])]
        assert blocks[-1].end == len(names)
    assert [b.label for b in lg.row_blocks(names, set(names), 240)[:5]] == [f"enc.layer.0.{m}" for m in "qkvo"] + [
        "enc.layer.0.ln"]  # one module (weight and bias) per row
    flat = [f"layers.{i}.weight" for i in range(500)]
    blocks = lg.row_blocks(flat, set(flat), 240)
    assert 20 <= len(blocks) <= 240 and blocks[0].label == f"layers.0–{blocks[0].end - 1}"
    assert [b.label for b in lg.row_blocks(flat[:9], set(flat), 240)] == flat[:9]  # within the limit: one each


def test_at_most_the_bound_of_step_columns(tmp_path):
    """A 2000-snapshot run gets at most 100 step columns, and many layers fewer, within the cell budget."""
    spec = Spec(name="long", layers=[("fc", "Linear", (4, 3))], snapshots=2000, heatmaps=False, probes=False)
    section = _section(write_run(tmp_path / "long", spec))
    assert section.bins.count == lg.MAX_STEP_COLUMNS
    for sig in section.signals:
        assert sig.cells["bin"].max() < lg.MAX_STEP_COLUMNS
        assert all(len(r["v"]) == lg.MAX_STEP_COLUMNS for r in glance._heatmap_records(sig, section.bins.count))
    assert lg.step_bins(range(2000), rows=500).count * 500 <= lg.MAX_CELLS
    assert lg.step_bins(range(7)).count == 7  # fewer snapshots than columns: one column each


def test_bins_cover_each_step_once():
    """Column ranges tile the steps from first to last, each step in the column its range names."""
    bins = lg.StepBins(first=5, last=1004, count=100)
    cols = bins.of(np.arange(5, 1005))
    for b in range(bins.count):
        assert (cols == b).sum() == bins.end(b) - bins.start(b) + 1
        assert cols[bins.start(b) - 5] == b and cols[bins.end(b) - 5] == b


def test_an_absent_signal_is_one_sentence(tmp_path):
    """A run without gradients or activations shows a sentence for each missing signal, and no chart."""
    run = write_run(tmp_path / "nograd", small_spec("nograd"))
    folder = run / TABLES_DIR / "stats"
    for part in folder.glob("part-*.parquet"):  # keep the parameter rows only
        table = pq.read_table(part)
        pq.write_table(table.filter(pc.equal(table["kind"], "param")), part)
    section = _section(run)
    assert [s.type.key for s in section.signals] == ["update_ratio", "weight_norm"]
    assert len(section.absent) == 3 and section.absent[0].startswith("Gradient norm: not drawn")
    html = build_report(run, html=tmp_path / "r.html").html.read_text(encoding="utf-8")
    part = html[html.index('<section class="wr-section" id="glance">'):]
    part = part[:part.index("</section>")]
    assert "Gradient norm: not drawn; this run recorded no gradients" in part
    assert "Module output std: not drawn" in part
    assert part.count("data-glance") == 3  # two heatmaps and the depth profile
    assert "Gradient L2 norm" not in part


def test_glance_data_is_compact(binned_run):
    """The section's datasets hold one array per row, not one object per cell."""
    ds = Datasets()
    glance.glance_charts(_section(binned_run), ds)
    size = sum(len(json.dumps(v)) for v in ds.values.values())
    cells = sum(len(r["v"]) for v in ds.values.values() for r in v if isinstance(r, dict) and "v" in r)
    assert cells == 100 * (8 + 8 + 8 + 4 + 3)
    assert size < 12 * cells


def test_print_keeps_gradients_and_rasterises_only_big_charts(binned_run):
    """In print, legend gradients use user-space units; a large whole-network chart becomes a PNG by
    its data, any other chart by the elements its SVG draws."""
    from weightreport.report.render import pdf

    section = _section(binned_run)
    chart = glance.glance_charts(section, Datasets())[1]
    text = str(pdf.picture(chart.full_spec(), chart.glance, chart.datasets))
    assert text.startswith("<svg") and 'gradientUnits="userSpaceOnUse"' in text
    assert 'y1="1" y2="0"' not in text  # no bounding-box gradient left for WeasyPrint to lose
    big = type(chart)(chart.title, chart.spec, wide=True, glance=True,
                      datasets={k: v * 8 for k, v in chart.datasets.items()})
    assert pdf.values_in(big.datasets) > pdf.RASTER_VALUES
    image = str(pdf.picture(big.full_spec(), big.glance, big.datasets))
    assert image.startswith('<img class="wr-raster" alt="" width="') and "data:image/png;base64," in image
    assert pdf.drawn_elements(text) <= pdf.RASTER_ELEMENTS  # drawn as it is when it is not a glance chart
    assert str(pdf.picture(chart.full_spec())).startswith("<svg")
    many = {"data": {"values": [{"x": i % 100, "y": i // 100} for i in range(7000)]}, "mark": "point",
            "encoding": {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"}}}
    assert pdf.drawn_elements(str(pdf.svg(many))) > pdf.RASTER_ELEMENTS
    assert str(pdf.picture(many)).startswith('<img class="wr-raster"')


def test_row_labels_keep_the_end_of_long_names():
    """A row label too long for its gutter shows ``…`` and the name's most specific end (after its block's
    number, when it has one), never more characters than the gutter holds, and a short one is left whole."""
    from weightreport.report.charts.layer_grid import ROW_CHARS, _label
    from weightreport.report.charts.names import fit_tail

    long = _label("bert.encoder.layer.0.intermediate.intermediate_act_fn", "bert.encoder.layer")
    assert long.startswith("0.…") and "intermediate_act_fn".endswith(long[3:]) and len(long) <= ROW_CHARS
    long = _label("encoder.intermediate.intermediate_act_fn", "encoder")
    assert long.startswith("…") and "intermediate_act_fn".endswith(long[1:]) and len(long) <= ROW_CHARS
    assert fit_tail("attention.self.query", ROW_CHARS) == "…self.query"
    assert fit_tail("fc1.weight", ROW_CHARS) == "fc1.weight"
    assert _label("relu#2", "") == "relu (call 2)"


def test_rows_under_a_range_of_blocks_keep_their_block_number():
    """A row under a range group (``encoder.layer.0–1``) is labelled from the blocks' shared path, so its
    label starts with its block's number, within the gutter."""
    from weightreport.report.charts.layer_grid import ROW_CHARS, row_records

    names = [f"encoder.layer.{i}.intermediate.intermediate_act_fn" for i in range(24)]
    groups = lg.module_groups(names, set(), limit=12)
    assert groups[0].label == "encoder.layer.0–1" and groups[0].shared == "encoder.layer"
    cells = pd.DataFrame({"tensor": names, "bin": 0, "value": 1.0, "bad": False})
    labels = [r["label"] for r in row_records(names, cells, groups, 1)]
    assert [x.split(".")[0] for x in labels] == [str(i) for i in range(24)]
    assert all(len(x) <= ROW_CHARS and x.endswith("act_fn") for x in labels)
