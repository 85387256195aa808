"""PyTorch Lightning: ``WeightReportCallback`` records a ``Trainer.fit`` with a Collector.

    from weightreport.integrations.lightning import WeightReportCallback
    trainer = L.Trainer(callbacks=[WeightReportCallback("runs/exp1", every=10)])

Needs the ``lightning`` (or ``pytorch_lightning``) package: ``pip install 'weightreport[lightning]'``.
"""

from __future__ import annotations

from pathlib import Path

from weightreport.errors import WeightReportError
from weightreport.integrations._common import (
    CollectorCallback,
    same_as_loss,
    scalar_items,
    split_info,
    split_validation,
)

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:
    try:
        from pytorch_lightning.callbacks import Callback
    except ImportError:
        msg = "the Lightning integration needs lightning; pip install 'weightreport[lightning]'"
        raise WeightReportError(msg) from None


class WeightReportCallback(CollectorCallback, Callback):
    """Creates a Collector when fitting starts, steps it after every optimizer step.

    Training metrics logged with ``self.log`` are recorded at each step, validation
    metrics (``val_*``) at the end of each validation epoch, and the learning rate of
    the first optimizer; the module's ``hparams`` (``save_hyperparameters()``) become
    the run's ``config`` unless one is passed. A metric that is exactly the step's loss
    under another name (``self.log("train_loss", loss)``) is not recorded twice: run.json
    ``run_info`` names it ("loss also logged as"). Only the global-zero process writes.

    Args:
        run_dir: the run directory.
        every: snapshot cadence in optimizer steps.
        build_report: build the HTML report when fitting ends.
        **collector_options: passed to ``Collector`` (``activations``, ``probe``, ...).
    """

    def __init__(self, run_dir: str | Path, every: int = 10, build_report: bool = False,
                 **collector_options) -> None:
        super().__init__(run_dir, every, build_report, **collector_options)
        self._last_step = 0
        self._same_as_loss: set[str] = set()

    def on_fit_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        hparams = dict(getattr(pl_module, "hparams", None) or {})
        self._start(pl_module, optimizer, config=hparams or None)
        self._last_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.collector is None or trainer.global_step == self._last_step:
            return  # accumulating gradients: no optimizer step yet
        self._last_step = trainer.global_step
        metrics, info = split_info(scalar_items(trainer.callback_metrics))
        if info:
            self.collector.run_info(**info)
        if isinstance(outputs, dict) and "loss" in outputs:
            metrics.setdefault("loss", float(outputs["loss"].detach()))
            for name in same_as_loss(metrics, metrics["loss"]):  # self.log("train_loss", loss): one curve
                self._same_as_loss.add(name)
                del metrics[name]
            if self._same_as_loss:
                self.collector.run_info(**{"loss also logged as": ", ".join(sorted(self._same_as_loss))})
        train, _ = split_validation(metrics)
        self.collector.step(**{k: v for k, v in train.items() if not k.endswith("_epoch")})

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self.collector is None or trainer.sanity_checking:
            return
        _, val = split_validation(scalar_items(trainer.callback_metrics))
        if val:
            self.collector.log(**val)

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.collector is None:
            return
        self._finish()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if self.collector is not None:
            self.collector.__exit__(type(exception), exception, exception.__traceback__)
