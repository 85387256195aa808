"""Hugging Face transformers: ``WeightReportCallback`` records a ``Trainer`` run.

    from weightreport.integrations.transformers import WeightReportCallback
    trainer = Trainer(model, args, ..., callbacks=[WeightReportCallback("runs/exp1", every=10)])

Needs the ``transformers`` package: ``pip install 'weightreport[transformers]'``.
"""

from __future__ import annotations

from weightreport.errors import WeightReportError
from weightreport.integrations._common import (
    CollectorCallback,
    scalar_items,
    split_info,
    split_validation,
)

try:
    from transformers import TrainerCallback
except ImportError:
    msg = "the Hugging Face integration needs transformers; pip install 'weightreport[transformers]'"
    raise WeightReportError(msg) from None


class WeightReportCallback(CollectorCallback, TrainerCallback):
    """Creates a Collector when training begins and steps it after every optimizer step.

    The step is taken in ``on_optimizer_step``, after the update and before the
    Trainer zeroes the gradients, so gradients are recorded. Logged values go in at
    the step they were logged (``eval_*`` as ``val_*``, ``learning_rate`` as ``lr``);
    runtime, samples and steps per second and FLOPs go in the run's ``run_info`` instead.
    The ``TrainingArguments`` that differ from their defaults become the run's
    ``config`` unless one is passed. Only the main process writes.

    Args:
        run_dir: the run directory.
        every: snapshot cadence in optimizer steps.
        build_report: build the HTML report when training ends.
        **collector_options: passed to ``Collector``.
    """

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        if not state.is_world_process_zero or model is None:
            return
        from weightreport.collect.config import non_default_fields

        # Not against a second, default TrainingArguments: building one resets accelerate's state mid-run.
        self._start(model, optimizer, config=non_default_fields(args))

    def on_optimizer_step(self, args, state, control, **kwargs):
        if self.collector is not None:
            self.collector.step()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.collector is None or not logs:
            return
        metrics = scalar_items(logs)
        metrics.pop("epoch", None)
        if "learning_rate" in metrics:
            metrics.setdefault("lr", metrics.pop("learning_rate"))
        if "lr" in metrics and self.collector.optimizer is not None:
            metrics.pop("lr")  # the collector records the optimizer's own
        metrics, info = split_info(metrics)
        if info:
            self.collector.run_info(**info)
        train, val = split_validation(metrics)
        if train or val:
            self.collector.log(**train, **val)

    def on_train_end(self, args, state, control, **kwargs):
        if self.collector is None:
            return
        self._finish()
