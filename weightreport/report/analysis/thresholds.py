"""The findings' thresholds: documented defaults in one dataclass, overridable from TOML.

``load_thresholds(config)`` reads a ``[tool.weightreport]`` table: from the TOML file
``config`` when given (its top level, or its ``[tool.weightreport]`` table), else from
the first ``pyproject.toml`` found from the current directory upward. Unknown keys, and
unknown finding codes in ``ignore``, are refused, so a typo does not silently keep a
default or keep reporting a finding.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from weightreport.errors import WeightReportError
from weightreport.report.analysis.checks import CODES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 reads TOML with the tomli backport
    import tomli as tomllib

PYPROJECT = "pyproject.toml"


@dataclass(frozen=True)
class Thresholds:
    """Every threshold the findings use, with its default.

    Attributes:
        ignore: finding codes never reported (e.g. ``["plateau"]``); each must be one of
            ``checks.CODES``.
        exploding_growth: a gradient norm this many times its early median (the first
            quarter of snapshots) is a warning.
        exploding_growth_error: ... and this many times is an error.
        vanishing_drop: a gradient norm below this fraction of its early median is a warning.
        depth_ratio: the per-element gradient RMS of the first weight layer over the last
            (at the last snapshot) beyond this ratio, either way, is exploding (above) or
            vanishing (below its inverse) across depth.
        update_ratio_low: median per-step update-to-weight ratio below this is reported (info:
            slow learning, or a layer that gets no gradient).
        update_ratio_high: ... above this is a warning (the usual target is about 1e-3).
        outlier_z_count: more than this many values beyond 6σ at the last snapshot (and more
            than a Laplace tail of the tensor's size has) is a warning.
        outlier_iqr_fraction: more than this fraction of values beyond the 1.5·IQR fences is
            an info (only for tensors of at least ``outlier_min_numel`` elements; a Laplace
            distribution, as trained weights often are, has 0.0625 there).
        outlier_min_numel: smaller tensors are not judged by their IQR fraction.
        dead_fraction: this fraction of dead ReLU units at the last snapshot is a warning.
        dead_fraction_error: ... and this fraction is an error.
        saturated_fraction: this fraction of saturated tanh/sigmoid units is a warning.
        saturated_fraction_error: ... and this fraction is an error.
        bn_drift_mean: median over channels of |batch mean − running mean| / running std
            above this (over the last quarter of snapshots) is drift.
        bn_drift_var_ratio: median over channels of batch var / running var beyond this
            ratio, either way, is drift.
        bn_gamma_min: a BatchNorm gamma with |γ| below this counts as collapsed.
        bn_gamma_fraction: this fraction of collapsed channels in a layer is a warning.
        overfit_rise: validation loss this fraction above its best, at the end, ...
        overfit_gap_growth: ... with the validation−training gap grown by this factor.
        plateau_improvement: the loss falling by less than this fraction of its start
            (first 10% of steps against last 10%) is a plateau.
        spike_factor: a loss more than this many MADs above the median of the previous
            ``spike_window`` values ...
        spike_relative: ... and more than this fraction above that median ...
        spike_range: ... by more than this fraction of the loss's descent (the largest of its
            first five values less its minimum), is a spike: an info.
        spike_warning: a spike that climbs back this fraction of the descent or more, or
            after which the loss stays up, is a warning (a single hard batch of a
            small-batch run near convergence climbs a third of the way back, then falls
            straight back: an info).
        spike_window: the number of previous loss values a spike is measured against.
        weight_norm_growth: a weight norm this many times its first value ...
        weight_norm_late_growth: ... still growing by this factor over the second half.
    """

    ignore: tuple[str, ...] = field(default=())
    exploding_growth: float = 100.0
    exploding_growth_error: float = 1e4
    vanishing_drop: float = 1e-3
    depth_ratio: float = 1e3
    update_ratio_low: float = 1e-5
    update_ratio_high: float = 1e-1
    outlier_z_count: int = 0
    outlier_iqr_fraction: float = 0.1
    outlier_min_numel: int = 256
    dead_fraction: float = 0.25
    dead_fraction_error: float = 0.9
    saturated_fraction: float = 0.25
    saturated_fraction_error: float = 0.9
    bn_drift_mean: float = 1.0
    bn_drift_var_ratio: float = 4.0
    bn_gamma_min: float = 0.01
    bn_gamma_fraction: float = 0.25
    overfit_rise: float = 0.1
    overfit_gap_growth: float = 1.5
    plateau_improvement: float = 0.05
    spike_factor: float = 10.0
    spike_relative: float = 0.5
    spike_range: float = 0.1
    spike_warning: float = 0.5
    spike_window: int = 20
    weight_norm_growth: float = 5.0
    weight_norm_late_growth: float = 1.25

    def __post_init__(self) -> None:
        """Refuse an unknown finding code in ``ignore``.

        Raises:
            WeightReportError: ``ignore`` names a code no check emits.
        """
        check_codes(self.ignore, "Thresholds")

    @classmethod
    def from_mapping(cls, table: dict, source: str) -> Thresholds:
        """Defaults overridden by ``table``; ``source`` names the file in error messages.

        Raises:
            WeightReportError: an unknown key, a value of the wrong type, or an unknown
                finding code in ``ignore``.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(table) - set(fields))
        if unknown:
            msg = (f"{source}: unknown threshold(s) {', '.join(unknown)}; "
                   f"the thresholds are {', '.join(sorted(fields))}")
            raise WeightReportError(msg)
        values = {}
        for key, value in table.items():
            default = getattr(cls, key) if key != "ignore" else ()
            if key == "ignore":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    msg = f"{source}: ignore must be a list of finding codes"
                    raise WeightReportError(msg)
                check_codes(value, source)
                values[key] = tuple(value)
            elif isinstance(value, bool) or not isinstance(value, int | float):
                msg = f"{source}: {key} must be a number, not {value!r}"
                raise WeightReportError(msg)
            else:
                values[key] = type(default)(value)
        return cls(**values)


def check_codes(codes, source: str) -> None:
    """Refuse any of ``codes`` that is not a finding code; ``source`` names where they came from.

    Raises:
        WeightReportError: one line naming the unknown code(s), the source and every code.
    """
    unknown = [c for c in codes if c not in CODES]
    if unknown:
        what = "code" if len(unknown) == 1 else "codes"
        msg = (f"{source}: unknown finding {what} {', '.join(repr(c) for c in unknown)} in ignore; "
               f"the codes are {', '.join(CODES)}")
        raise WeightReportError(msg)


def find_pyproject(start: Path | None = None) -> Path | None:
    """The first ``pyproject.toml`` in ``start`` (default: the current directory) or above."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / PYPROJECT
        if candidate.is_file():
            return candidate
    return None


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read the configuration {path}: {exc}; pass a readable TOML file"
        raise WeightReportError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"{path} is not valid TOML ({exc}); fix the file or pass another with --config"
        raise WeightReportError(msg) from None


def load_thresholds(config: str | Path | None = None, start: Path | None = None) -> Thresholds:
    """The thresholds from ``config``, else from the nearest pyproject.toml, else the defaults.

    Args:
        config: a TOML file with thresholds at its top level or under ``[tool.weightreport]``.
        start: where the search for pyproject.toml begins (default: the current directory).

    Raises:
        WeightReportError: the file is missing or invalid, or names an unknown threshold.
    """
    if config is not None:
        path = Path(config)
        if not path.is_file():
            msg = f"{path}: no such configuration file; pass a TOML file with threshold values"
            raise WeightReportError(msg)
        data = _read_toml(path)
        table = data.get("tool", {}).get("weightreport", data) if "tool" in data else data
        return Thresholds.from_mapping(dict(table), str(path))
    found = find_pyproject(start)
    if found is None:
        return Thresholds()
    table = _read_toml(found).get("tool", {}).get("weightreport")
    if not isinstance(table, dict):
        return Thresholds()
    return Thresholds.from_mapping(table, f"{found} [tool.weightreport]")
