"""What the training-framework integrations share: the collector's lifecycle, scalar extraction."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch


def scalar_items(metrics: Mapping) -> dict[str, float]:
    """The entries of ``metrics`` that are single finite-or-not numbers, as floats."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.detach().item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        out[str(key)] = float(value)
    return out


RUN_INFO_SUFFIXES = ("_runtime", "_per_second", "flos", "flops")
"""Logged names that describe the run, not its training: a trainer's runtime, samples or
steps per second, and FLOPs. They go in run.json ``run_info``, not the curves."""


def split_info(metrics: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """(curves, run info): ``RUN_INFO_SUFFIXES`` names are run info.

    A ``train_loss`` logged beside a runtime is the trainer's mean over the whole run (the
    Hugging Face Trainer's last log), a summary rather than a point of the curve.
    """
    info = {k: v for k, v in metrics.items() if k.lower().endswith(RUN_INFO_SUFFIXES)}
    if info and "train_loss" in metrics:
        info["train_loss (mean over the run)"] = metrics["train_loss"]
        rest = {k: v for k, v in metrics.items() if k not in info and k != "train_loss"}
    else:
        rest = {k: v for k, v in metrics.items() if k not in info}
    return rest, info


def same_as_loss(metrics: Mapping[str, float], loss: float) -> list[str]:
    """Names other than ``loss`` that carry exactly the training loss at this step (``train_loss``)."""
    return sorted(k for k, v in metrics.items() if k != "loss" and "loss" in k and v == loss)


def split_validation(metrics: Mapping[str, float], prefixes=("val_", "val/", "eval_", "valid_")):
    """(training, validation) scalars; validation names are normalised to ``val_*``."""
    train, val = {}, {}
    for key, value in metrics.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                val["val_" + key[len(prefix):]] = value
                break
        else:
            train[key] = value
    return train, val


class CollectorCallback:
    """The state both framework callbacks keep, and how they start and finish a run.

    Args:
        run_dir: the run directory.
        every: snapshot cadence in optimizer steps.
        build_report: build the HTML report when training ends.
        **collector_options: passed to ``Collector``.
    """

    def __init__(self, run_dir: str | Path, every: int = 10, build_report: bool = False,
                 **collector_options) -> None:
        self.run_dir = Path(run_dir)
        self.every = every
        self.build_report = build_report
        self.options = collector_options
        self.collector = None
        self.report: Path | None = None

    def _start(self, model, optimizer, config=None) -> None:
        """Create the collector; ``config`` is the framework's hyperparameters, unless the
        user passed ``config=`` to the callback."""
        from weightreport.collect.collector import Collector

        options = {"config": config, **self.options}
        self.collector = Collector(model, self.run_dir, every=self.every, optimizer=optimizer, **options)

    def _finish(self) -> None:
        """Close the collector and, when asked, build the HTML report (its module loads only then)."""
        self.collector.close()
        if self.build_report:
            from weightreport.report.build import build_report

            self.report = build_report(self.run_dir).html


__all__ = ["CollectorCallback", "same_as_loss", "scalar_items", "split_info", "split_validation"]
