"""The inspect page's charts: their Vega-Lite specs, datasets and ids, frozen for a fixed inspection."""

from __future__ import annotations

import json

import jsonschema
from altair.vegalite.v6.schema import load_schema

from weightreport.inspect.charts import inspect_charts
from weightreport.inspect.model import inspect_model


def _matrix(name: str, shape: list[int], singular: list[float], alpha: float | None, evals: int,
            reliable: bool, traps: int = 0, stable_rank: float = 3.0) -> dict:
    """A matrix's row of an inspection, with its spectrum and alpha fit given."""
    return {"tensor": name, "shape": shape, "numel": shape[0] * shape[1], "mean": 0.01, "std": 0.5,
            "min": -2.0, "max": 2.0, "skew": 0.0, "kurtosis": 3.0, "norm": 10.0,
            "edges": [-2.0 + k / 2 for k in range(9)], "counts": [0, 1, 5, 20, 18, 6, 0, 0],
            "singular_values": singular, "alpha": alpha, "alpha_evals": evals, "alpha_reliable": reliable,
            "alpha_sigma": None if alpha is None else 0.25, "alpha_tail": evals // 3,
            "stable_rank": stable_rank, "spectral_norm": singular[0], "correlation_traps": traps}


def _vector(name: str, counts: list[int]) -> dict:
    """A 1-D tensor's row of an inspection: statistics and histogram only."""
    return {"tensor": name, "shape": [len(counts) * 3], "numel": len(counts) * 3, "mean": 0.0, "std": 1.0,
            "min": -1.0, "max": 1.0, "skew": None, "kurtosis": float("nan"), "norm": 2.0,
            "edges": [-1.0 + 2 * k / len(counts) for k in range(len(counts) + 1)], "counts": counts,
            "singular_values": None, "alpha": None, "alpha_evals": None, "alpha_reliable": None,
            "alpha_sigma": None, "alpha_tail": None, "stable_rank": None, "spectral_norm": None,
            "correlation_traps": None}


def _inspection() -> dict:
    """An inspection result made by hand: every number exact in binary, so the specs are the same everywhere.

    It holds an embedding with too few eigenvalues (unreliable), attention and MLP matrices
    (one with a long spectrum drawn at log-spaced ranks and a zero singular value, one that
    could not be fitted, one with traps and an infinite stable rank), a conv kernel, and
    vectors whose histograms have empty edge bins or no counts at all; names stored sorted.
    """
    long = [100.0 / (k + 1) + 1 / 7 for k in range(299)] + [0.0]
    return {"checkpoint": "hand-made.safetensors", "total_params": 12345, "names_sorted": True, "tensors": [
        _vector("encoder.layer.0.attention.output.LayerNorm.bias", [0, 0, 3, 7, 0, 1, 0, 0]),
        _matrix("encoder.layer.0.attention.self.query.weight", [64, 64], [8.0 / (k + 1) for k in range(64)],
                2.5, 64, True),
        _matrix("encoder.layer.0.intermediate.dense.weight", [300, 64], long, 7.25, 300, True, traps=2,
                stable_rank=float("inf")),
        _matrix("encoder.layer.0.output.dense.weight", [64, 300], [1.0] * 64, None, 64, False),
        _vector("encoder.layer.1.output.LayerNorm.weight", [0, 0, 0, 0]),
        _matrix("embeddings.word_embeddings.weight", [40, 8], [3.0 - k / 4 for k in range(8)], 1.5, 8, False),
        {**_matrix("features.conv.weight", [16, 27], [2.0 - k / 16 for k in range(16)], 1.75, 60, True),
         "shape": [16, 3, 3, 3], "numel": 432},
    ]}


def _charts_json(result: dict) -> str:
    """Every chart of the page, in order, with its id, flags, spec and datasets, as sorted JSON."""
    charts = inspect_charts(inspect_model(result))
    out = {key: [{"id": c.id, "title": c.title, "layered": c.layered, "wide": c.wide, "glance": c.glance,
                  "blank": c.blank, "spec": c.spec, "datasets": c.datasets} for c in lst]
           for key, lst in charts.items()}
    return json.dumps(out, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False)


def test_charts_match_the_frozen_specs(snapshot):
    """The specs, datasets and content-hash ids of a fixed inspection are the stored ones, byte for byte."""
    assert _charts_json(_inspection()) == snapshot


def test_a_checkpoint_without_matrices_has_only_its_histograms():
    """With no matrix there is no spectrum, alpha or stable-rank chart, and the histogram still is drawn."""
    result = {"checkpoint": "v.safetensors", "total_params": 24, "names_sorted": False,
              "tensors": [_vector("a.bias", [1, 2, 3, 0]), _vector("b.bias", [0, 4, 4, 0])]}
    charts = inspect_charts(inspect_model(result))
    assert [len(charts[k]) for k in ("summary", "histograms", "spectra")] == [0, 1, 0]
    (hist,) = charts["histograms"]
    (rows,) = hist.datasets.values()
    assert {r["tensor"] for r in rows} == {"a.bias", "b.bias"}
    assert hist.spec["params"] == [{"name": "layer", "value": "a.bias"}]


def test_specs_are_valid_vega_lite():
    """Each chart's full spec (datasets inlined) validates against Altair's bundled Vega-Lite schema."""
    validator = jsonschema.Draft7Validator(load_schema())
    charts = [c for lst in inspect_charts(inspect_model(_inspection())).values() for c in lst]
    assert len(charts) == 4
    for chart in charts:
        errors = sorted(validator.iter_errors(chart.full_spec()), key=str)
        assert not errors, f"{chart.title}: {errors[0].message[:300]}"
