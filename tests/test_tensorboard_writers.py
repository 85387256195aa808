"""Logs from the writers people use import, and the imported runs report, summarise, check and diff."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from weightreport import build_report, load_run
from weightreport.cli import main
from weightreport.integrations.tensorboard import import_logdir, import_tensorboard

pytest.importorskip("tensorboard")

def _write_summaries(writer_cls, logdir, shift: float = 0.0) -> None:
    torch.manual_seed(0)
    writer = writer_cls(str(logdir))
    for step in range(4):
        writer.add_scalar("Loss/train", 1.0 / (step + 1) + shift, step)
        writer.add_scalar("Loss/val", 1.2 / (step + 1) + shift, step)
        writer.add_scalar("Accuracy/train", 0.5 + 0.1 * step, step)
        writer.add_histogram("weights/fc1.weight", torch.randn(200) * (1 + shift) + 0.01 * step, step)
        writer.add_histogram("grads/fc1.weight", torch.randn(200) * 0.01, step)
        writer.add_histogram("fc1/bias", torch.randn(10), step)
    writer.close()


def _report_everything(run, tmp_path, capsys) -> dict:
    """Build, summarise (md and json) and check ``run``; returns the JSON summary."""
    capsys.readouterr()  # what training printed
    html = tmp_path / f"{run.name}.html"
    build_report(run, html=html)
    page = html.read_text()
    assert "imported from TensorBoard logs, which do not record the model" in page  # said, not guessed
    assert "<b>None</b>" not in page
    assert main(["summary", str(run)]) == 0
    assert "parameters" in capsys.readouterr().out
    assert main(["summary", str(run), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert main(["check", str(run)]) in (0, 1)
    capsys.readouterr()
    return summary


def _diff(a, b, tmp_path, capsys) -> None:
    assert main(["diff", str(a), str(b), "-o", str(tmp_path / "diff.html")]) == 0
    assert (tmp_path / "diff.html").stat().st_size > 0
    capsys.readouterr()


def test_torch_summary_writer_run_reports(tmp_path, capsys):
    """torch's SummaryWriter with Loss/train and weights/fc1.weight tags gives a run that builds, summarises, checks and diffs."""
    from torch.utils.tensorboard import SummaryWriter

    _write_summaries(SummaryWriter, tmp_path / "a")
    _write_summaries(SummaryWriter, tmp_path / "b", shift=0.5)
    a = import_tensorboard(tmp_path / "a", tmp_path / "run_a")
    b = import_tensorboard(tmp_path / "b", tmp_path / "run_b")
    run = load_run(a)
    assert set(run.tables["scalars"].name) == {"loss", "val_loss", "acc"}
    assert set(zip(run.tables["stats"].tensor, run.tables["stats"].kind, strict=True)) == {
        ("fc1.weight", "param"), ("fc1.weight", "grad"), ("fc1.bias", "param")}
    assert run.manifest["model"] == {"class": None, "total_params": 210, "trainable_params": None,
                                     "modules": [], "source": "tensorboard"}
    assert run.manifest["source"] == {"kind": "tensorboard", "logdir": str(tmp_path / "a"),
                                      "writer": "torch.utils.tensorboard"}
    _report_everything(a, tmp_path, capsys)
    _diff(a, b, tmp_path, capsys)


def test_tensorboardx_run_reports(tmp_path, capsys):
    """tensorboardX's SummaryWriter gives the same run, and it reports."""
    tbx = pytest.importorskip("tensorboardX")
    _write_summaries(tbx.SummaryWriter, tmp_path / "logs")
    run = load_run(import_tensorboard(tmp_path / "logs", tmp_path / "run"))
    assert set(run.tables["scalars"].name) == {"loss", "val_loss", "acc"}
    assert run.manifest["model"]["total_params"] == 210
    assert run.manifest["source"]["writer"] == "tensorboardX"
    _report_everything(run.path, tmp_path, capsys)


def _lightning_fit(lightning, save_dir, versions: int) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger

    class Module(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

        def training_step(self, batch, _):
            x, y = batch
            loss = nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

        def on_train_batch_end(self, *_):
            for name, p in self.named_parameters():
                self.logger.experiment.add_histogram(name, p, self.global_step)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    for _ in range(versions):
        trainer = lightning.Trainer(
            max_epochs=2, accelerator="cpu", logger=TensorBoardLogger(str(save_dir)),
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            log_every_n_steps=1,
            callbacks=[lightning.pytorch.callbacks.LearningRateMonitor()],
        )
        trainer.fit(Module(), loader, loader)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_lightning_logger_runs_report(tmp_path, capsys):
    """Lightning's TensorBoardLogger (self.log, LearningRateMonitor, add_histogram) in lightning_logs/version_0 and _1 imports as two runs that report and diff."""
    lightning = pytest.importorskip("lightning")
    _lightning_fit(lightning, tmp_path, versions=2)
    runs = import_logdir(tmp_path / "lightning_logs", tmp_path / "runs")
    assert [r.name for r in runs] == ["version_0", "version_1"]
    run = load_run(runs[0])
    assert {"loss", "val_loss", "lr"} <= set(run.tables["scalars"].name)
    assert "epoch" not in set(run.tables["scalars"].name)
    assert set(run.tables["stats"].tensor) == {"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"}
    assert run.manifest["model"]["total_params"] == 4 * 8 + 8 + 8 + 1
    assert run.manifest["source"]["writer"] == "lightning"
    _report_everything(runs[0], tmp_path, capsys)
    _diff(runs[0], runs[1], tmp_path, capsys)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_transformers_trainer_tensorboard_run_reports(tmp_path, capsys, monkeypatch):
    """The Hugging Face Trainer's own TensorBoard callback gives loss, val_loss, lr and grad_norm curves and run_info, and the run reports."""
    transformers = pytest.importorskip("transformers")

    class Regressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 1)

        def forward(self, x=None, labels=None):
            out = self.fc(x)
            return {"loss": nn.functional.mse_loss(out, labels), "logits": out}

    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    torch.manual_seed(0)
    rows = [{"x": torch.randn(4), "labels": torch.randn(1)} for _ in range(32)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=6, per_device_train_batch_size=8,
        logging_steps=2, report_to=["tensorboard"], save_strategy="no", use_cpu=True,
        eval_strategy="steps", eval_steps=3, disable_tqdm=True,
    )
    transformers.Trainer(model=Regressor(), args=args, train_dataset=rows,
                         eval_dataset=rows[:8]).train()
    run = load_run(import_tensorboard(tmp_path / "tb", tmp_path / "run"))
    names = set(run.tables["scalars"].name)
    assert {"loss", "val_loss", "lr", "grad_norm"} <= names
    assert not names & {"epoch", "train_runtime", "total_flos", "eval_runtime", "train_loss"}
    info = run.manifest["run_info"]
    assert {"train_runtime", "train_samples_per_second", "total_flos", "eval_runtime"} <= set(info)
    assert run.manifest["model"]["total_params"] is None  # the Trainer logs no histograms
    assert run.manifest["source"]["writer"] == "transformers"
    _report_everything(run.path, tmp_path, capsys)
