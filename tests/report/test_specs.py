"""Every chart spec is valid Vega-Lite, JSON-clean and content-addressed."""

from __future__ import annotations

import json

import jsonschema
import pytest
from altair.vegalite.v6.schema import load_schema

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
