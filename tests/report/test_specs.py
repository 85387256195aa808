"""Every chart spec is valid Vega-Lite, JSON-clean and content-addressed."""

from __future__ import annotations

import json

import altair as alt
import jsonschema
import numpy as np
import pandas as pd
import pytest
from altair.vegalite.v6.schema import load_schema

from weightreport.report.charts import specs
from weightreport.report.charts.common import Datasets, make, records
from weightreport.report.model import analyze, section_charts
from weightreport.runfmt.reader import load_run


@pytest.fixture(scope="module")
def validator():
    """A validator for altair's bundled Vega-Lite schema."""
    schema = load_schema()
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("which", ["tiny_run", "xss_run", "empty_run"])
def test_specs_validate(which, request, validator):
    """Each chart's full spec (datasets inlined) validates against the Vega-Lite schema."""
    model = analyze(load_run(request.getfixturevalue(which)))
    charts = [c for lst in section_charts(model).values() for c in lst]
    assert charts
    for chart in charts:
        spec = chart.full_spec()
        json.dumps(spec, allow_nan=False)
        errors = sorted(validator.iter_errors(spec), key=str)
        assert not errors, f"{chart.title}: {errors[0].message[:300]}"


def test_ids_unique_and_stable(tiny_run):
    """Chart ids are unique and the same across two analyses of one run."""
    ids = []
    for _ in range(2):
        model = analyze(load_run(tiny_run))
        ids.append([c.id for lst in section_charts(model).values() for c in lst])
    assert ids[0] == ids[1]
    assert len(set(ids[0])) == len(ids[0])


def test_plain_top_level_specs_are_altairs():
    """``specs.top_level`` adds the ``$schema`` and ``config`` the installed Altair's ``to_dict`` adds."""
    ds = Datasets()
    data = ds.add([{"x": 1.0}])
    chart = make("t", alt.Chart(data).mark_point().encode(x="x:Q"), ds)
    plain = specs.make("t", specs.top_level({"data": {"name": data.name}, "mark": {"type": "point"},
                                             "encoding": {"x": {"field": "x", "type": "quantitative"}}}), ds)
    assert specs.dumps(plain.spec) == specs.dumps(chart.spec) and plain.datasets == chart.datasets
    assert specs.SCHEMA_URL == alt.SCHEMA_URL


def test_row_records_are_dataframe_records():
    """Records from plain rows equal ``records`` of the same rows as a DataFrame: rounding, NaN/Inf, ints, text."""
    rows = [{"t": "a", "f": 1 / 3, "g": None, "i": 3, "b": True, "n": 7, "s": "2×3"},
            {"t": "b", "f": float("nan"), "g": 2.5, "i": 4, "b": False, "n": np.int64(8), "s": "x"},
            {"t": "c", "f": float("inf"), "g": np.float32(0.1), "i": None, "b": True, "n": 9, "s": "scalar"}]
    cols = ["t", "f", "g", "i", "b", "n", "s"]
    plain = specs.row_records(rows, cols, int_cols=("i",))
    assert plain == records(pd.DataFrame(rows), cols, int_cols=("i",))
    assert specs.dumps(plain) == specs.dumps(records(pd.DataFrame(rows), cols, int_cols=("i",)))
    assert plain[0]["f"] == 0.333333 and plain[1]["f"] is None and plain[2]["f"] is None
