"""The Lightning and Hugging Face callbacks record real training runs."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch
from torch import nn

from weightreport import Collector, WeightReportError, load_run


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_lightning_callback_records_fit(tmp_path):
    """A Lightning fit with the callback leaves a complete run with train and val metrics, and its hparams as config."""
    lightning = pytest.importorskip("lightning")
    from weightreport.integrations.lightning import WeightReportCallback

    class Module(lightning.LightningModule):
        def __init__(self, width: int = 8, lr: float = 0.1):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 1))

        def training_step(self, batch, _):
            x, y = batch
            loss = nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    callback = WeightReportCallback(tmp_path / "run", every=2)
    trainer = lightning.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
    )
    trainer.fit(Module(lr=0.1), loader, loader)
    run = load_run(tmp_path / "run")
    assert run.manifest["status"] == "complete"
    assert run.manifest["config"] == {"width": 8, "lr": 0.1}  # from save_hyperparameters()
    assert run.manifest["last_step"] == 8
    names = set(run.tables["scalars"].name)
    assert {"loss", "val_loss", "lr"} <= names
    assert "train_loss" not in names  # the same series as loss: drawn once, named in run.json run_info
    assert run.manifest["run_info"] == {"loss also logged as": "train_loss"}
    stats = run.tables["stats"]
    assert set(stats[stats.kind == "grad"].tensor) == {"net.0.weight", "net.0.bias",
                                                         "net.2.weight", "net.2.bias"}
    assert sorted(set(stats.step)) == [0, 2, 4, 6, 8]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_transformers_callback_records_training(tmp_path):
    """A Hugging Face Trainer run with the callback records gradients, loss, eval loss, and the
    TrainingArguments that differ from their defaults as config."""
    transformers = pytest.importorskip("transformers")
    from weightreport.integrations.transformers import WeightReportCallback

    class Regressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 1)

        def forward(self, x=None, labels=None):
            out = self.fc(x)
            return {"loss": nn.functional.mse_loss(out, labels), "logits": out}

    torch.manual_seed(0)
    rows = [{"x": torch.randn(4), "labels": torch.randn(1)} for _ in range(32)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=6, per_device_train_batch_size=8,
        logging_steps=2, report_to=[], save_strategy="no", use_cpu=True,
        eval_strategy="steps", eval_steps=3, disable_tqdm=True,
    )
    callback = WeightReportCallback(tmp_path / "run", every=3)
    trainer = transformers.Trainer(model=Regressor(), args=args, train_dataset=rows,
                                   eval_dataset=rows[:8], callbacks=[callback])
    trainer.train()
    run = load_run(tmp_path / "run")
    assert run.manifest["status"] == "complete"
    assert run.manifest["last_step"] == 6
    names = set(run.tables["scalars"].name)
    assert {"loss", "val_loss", "lr"} <= names
    assert not {n for n in names if n.endswith(("_runtime", "_per_second", "flos"))}, names
    assert "train_loss" not in names  # the Trainer's mean over the run is not a point of the curve
    info = run.manifest["run_info"]
    assert {"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos",
            "train_loss (mean over the run)"} <= set(info)
    assert "eval_runtime" in info and "val_runtime" not in names  # evaluation speed is no validation curve
    from weightreport.report.analysis.summary import summarize

    shown = summarize(run).to_dict()["run_info"]
    assert shown["train_runtime"] == f"{info['train_runtime']:.4g}" and set(shown) == set(info)
    stats = run.tables["stats"]
    assert sorted(set(stats[stats.kind == "grad"].step)) == [3, 6]
    config = run.manifest["config"]
    assert config["max_steps"] == 6 and config["logging_steps"] == 2
    assert config["eval_steps"] == 3 and config["use_cpu"] is True
    assert "seed" not in config and "per_device_train_batch_size" not in config  # defaults are left out


def test_run_info_keeps_what_cannot_be_json_as_repr(tmp_path):
    """Collector.run_info stores numbers and text as they are, anything else as its repr, last value wins."""
    model = nn.Linear(2, 1)
    with Collector(model, tmp_path / "run") as wr:
        wr.run_info(runtime=1.5, device="cpu", shape=(2, 3))
        wr.run_info(runtime=2.5)
    assert load_run(tmp_path / "run").manifest["run_info"] == {"runtime": 2.5, "device": "cpu", "shape": "(2, 3)"}


@pytest.mark.parametrize(("module", "package", "extra"), [
    ("weightreport.integrations.lightning", "lightning", "lightning"),
    ("weightreport.integrations.transformers", "transformers", "transformers"),
])
def test_missing_package_names_the_extra(monkeypatch, module, package, extra):
    """Without the framework installed, importing the integration names the extra to install."""
    for name in list(sys.modules):
        if name in (package, module) or name.startswith(package + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)
    if package == "lightning":
        monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
        monkeypatch.setitem(sys.modules, "lightning.pytorch.callbacks", None)
        monkeypatch.setitem(sys.modules, "pytorch_lightning", None)
        monkeypatch.setitem(sys.modules, "pytorch_lightning.callbacks", None)
    with pytest.raises(WeightReportError, match=rf"weightreport\[{extra}\]"):
        importlib.import_module(module)
