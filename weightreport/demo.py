"""``weightreport demo``: train the seeds' three examples on the CPU and record them.

(a) the 5→1 linear model for 100 epochs (per-weight trajectories);
(b) ``SimpleNet``, an MLP 64 → 128 → 10, on scikit-learn's 8×8 handwritten digits;
(c) a small CNN with BatchNorm on the same digits, with validation curves and a probe.
The digits ship inside scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from weightreport.collect.collector import Collector
from weightreport.errors import WeightReportError
from weightreport.report.build import BuiltReport, build_report
from weightreport.runfmt.schema import MANIFEST

DEMO_PREFIX = "demo-"


class SimpleLinearModel(nn.Module):
    """The seeds' 5 → 1 linear model."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class SimpleNet(nn.Module):
    """The seeds' MLP: input → 128 → 10."""

    def __init__(self, inputs: int = 64) -> None:
        super().__init__()
        self.fc1 = nn.Linear(inputs, 128)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(x.flatten(1))))


class SmallCNN(nn.Module):
    """A small CNN with BatchNorm for 8×8 digits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.bn3 = nn.BatchNorm1d(64)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.pool(self.relu2(self.bn2(self.conv2(x))))
        x = self.relu3(self.bn3(self.fc1(x.flatten(1))))
        return self.fc2(x)


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8×8 digits as (N, 1, 8, 8) float tensors in [0, 1] and labels."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        msg = "the demo needs scikit-learn for its digits data; pip install 'weightreport[demo]'"
        raise WeightReportError(msg) from None
    data = sk_load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    return x, y


def fresh_run_dir(path: Path) -> Path:
    """Clear a previous demo run at ``path``; refuse to touch anything else."""
    if path.exists():
        manifest = path / MANIFEST
        try:
            name = json.loads(manifest.read_text()).get("name", "")
        except (OSError, ValueError):
            name = ""
        if not str(name).startswith(DEMO_PREFIX):
            msg = f"{path} exists and is not a weightreport demo run; move it or pass another --runs folder"
            raise WeightReportError(msg)
        shutil.rmtree(path)
    return path


def train_linear(run_dir: Path, epochs: int = 100) -> Path:
    """(a) The 5 → 1 model, full-batch SGD, one snapshot per epoch."""
    torch.manual_seed(0)
    inputs, targets = torch.randn(100, 5), torch.randn(100, 1)
    model = SimpleLinearModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Collector(model, fresh_run_dir(run_dir), every=1, optimizer=opt,
                   name=DEMO_PREFIX + "linear-5to1") as wr:
        for _ in range(epochs):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(inputs), targets)
            loss.backward()
            opt.step()
            wr.step(loss=loss.item())
    return run_dir


def _train_classifier(
    model: nn.Module, run_dir: Path, name: str, epochs: int, lr: float,
    prepare: Callable[[torch.Tensor], torch.Tensor], every: int,
) -> Path:
    """Mini-batch training on the digits with a validation split and a probe batch."""
    torch.manual_seed(0)
    x, y = load_digits()
    x = prepare(x)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    val_idx, train_idx = order[:360], order[360:]
    xv, yv = x[val_idx], y[val_idx]
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(1)
    config = {"model": type(model).__name__, "lr": lr, "epochs": epochs, "batch_size": 64,
              "optimizer": "SGD(momentum=0.9)", "schedule": "cosine"}
    with Collector(model, fresh_run_dir(run_dir), every=every, optimizer=opt,
                   probe=xv[:8], name=DEMO_PREFIX + name, config=config) as wr:
        for _ in range(epochs):
            model.train()
            perm = train_idx[torch.randperm(len(train_idx), generator=gen)]
            for i in range(0, len(perm), 64):
                batch = perm[i : i + 64]
                if len(batch) < 2:
                    continue
                opt.zero_grad()
                out = model(x[batch])
                loss = nn.functional.cross_entropy(out, y[batch])
                loss.backward()
                opt.step()
                acc = (out.argmax(1) == y[batch]).float().mean().item()
                wr.step(loss=loss.item(), acc=acc)
            sched.step()
            model.eval()
            with torch.no_grad():
                out = model(xv)
                wr.log(val_loss=nn.functional.cross_entropy(out, yv).item(),
                       val_acc=(out.argmax(1) == yv).float().mean().item())
    return run_dir


def train_mlp(run_dir: Path, epochs: int = 15) -> Path:
    """(b) SimpleNet on the flattened digits."""
    return _train_classifier(SimpleNet(64), run_dir, "mlp-digits", epochs, 0.05,
                             lambda x: x.flatten(1), every=5)


def train_cnn(run_dir: Path, epochs: int = 15, lr: float = 0.05, name: str = "cnn-digits") -> Path:
    """(c) The small CNN with BatchNorm on the digits (``lr`` and ``name`` for a sweep)."""
    return _train_classifier(SmallCNN(), run_dir, name, epochs, lr, lambda x: x, every=5)


DEMOS = {"linear-5to1": train_linear, "mlp-digits": train_mlp, "cnn-digits": train_cnn}
WHAT = {"linear-5to1": "the 5 → 1 linear model, 100 epochs", "mlp-digits": "an MLP on the 8×8 digits, 15 epochs",
        "cnn-digits": "a CNN with BatchNorm on the digits, 15 epochs"}


def run_demo(runs: Path = Path("runs/demo"), reports: Path = Path("reports"), pdf: bool = True,
             say: Callable[[str], None] = print) -> list[BuiltReport]:
    """Train the three demo models, recording each into ``runs/<name>``, and build their reports.

    Args:
        runs: where the run directories go.
        reports: where the reports go (``<name>.html`` and ``.pdf``).
        pdf: also write each PDF.
        say: told what is happening, a line at a time.

    Returns:
        What was written for each run, in the order (a), (b), (c).
    """
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    built = []
    for number, (name, train) in enumerate(DEMOS.items(), start=1):
        say(f"[{number}/{len(DEMOS)}] training {WHAT[name]} → {runs / name}")
        run_dir = train(runs / name)
        done = build_report(run_dir, html=reports / f"{name}.html", pdf=True if pdf else None)
        say("      report: " + ", ".join(str(p) for p in (done.html, done.pdf) if p is not None))
        built.append(done)
    say(f"done: open {built[-1].html} in a browser (no server needed)")
    return built
