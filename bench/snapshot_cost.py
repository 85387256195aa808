"""What a snapshot step costs on models with little compute per parameter (issue 12, item 9).

Run: python bench/snapshot_cost.py   (CPU, two threads; about 5 minutes on an idle machine)

Two models, each timed through the public API in the order a training loop calls it
(forward, backward, ``opt.step()``, then ``wr.step()``), with a plain training step of a
copy of the same model interleaved in alternating order, medians of ``PAIRS``:

- **ResNet-18 class**: a plain-torch ResNet-18 (BasicBlocks [2, 2, 2, 2], 64–512
  channels, BatchNorm, 11.2M parameters, 62 tensors) at 32×32, batch 32: the snapshot
  step (``every=1``, activations on: the defaults but for the cadence) against a plain
  step. Target: ≤ +50 %.
- **142 small tensors**: 71 ``Linear(32, 32)`` layers with a ReLU after each (142 tensors,
  75k parameters), batch 32, where the fixed cost per tensor dominates: (snapshot step −
  plain step) / 142. Target: ≤ 50 µs per tensor.
- **off-cadence** on the ResNet: steps with a collector attached but not due (``every``
  huge) against steps without one. Target: ≤ +1 %. Two copies of one model differ by up
  to a per cent or two on this machine with no collector at all (where their memory
  lies), as much as the target, so this one times one copy throughout: rounds of three
  phases of ``OFF_STEPS`` steps, each after ``OFF_WARM`` untimed ones (no collector; a
  collector attached, then closed, which removes its hooks; no collector again, the
  control), in an order that rotates every round; medians. The control's difference
  from the first phase is the noise of the figure. Beside it, two plain copies compared
  as the snapshot step is.

A part of the snapshot step's time is printed beside it: the activation hooks (their own
clock), and the collector's ``wr.step()`` (parameters, gradients, activations described,
rows buffered). The medians leave out the Parquet write every ``flush_every`` snapshots.
That write runs on a thread while the next steps train, so its cost is not all inside
``wr.step()``: the cost per tensor with the flushes is therefore taken from the means of
whole steps, (mean snapshot step − mean plain step) / 142, over ``SMALL_PAIRS`` pairs
(20 flushes), and what the flushes add is that less the medians' figure. The thread slows
whichever step runs beside it, a plain one as often as one with the collector; it took
1.3 ms from five steps beside a 15 ms write (measured apart), so the figure can miss at most
half of that, 0.5 µs per tensor.
"""

from __future__ import annotations

import copy
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

from weightreport import Collector

torch.manual_seed(0)
torch.set_num_threads(2)
PAIRS = 30
SMALL_PAIRS = 200  # 20 flushes at flush_every=10, for the means
OFF_ROUNDS = 12
OFF_WARM = 3
OFF_STEPS = 4
"""Off cadence: rounds of three phases of ``OFF_STEPS`` steps (see ``off_cadence``)."""


class Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


def resnet18() -> nn.Module:
    torch.manual_seed(0)
    layers, cin = [], 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Basic(cin, cout, stride), Basic(cout, cout, 1)]
        cin = cout
    return nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                         *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10))


def many_small() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(*[m for _ in range(71) for m in (nn.Linear(32, 32), nn.ReLU())])


class Trainer:
    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        self.model, self.x, self.y = model, x, y
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(self) -> float:
        self.opt.zero_grad()
        out = self.model(self.x)
        loss = nn.functional.cross_entropy(out, self.y) if out.shape[-1] == 10 else out.pow(2).mean()
        loss.backward()
        self.opt.step()
        return loss.item()


def timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def compare(make, x, y, tmp: Path, every: int | None,
            pairs: int = PAIRS) -> tuple[float, float, float, float, float]:
    """Median plain step, median step + ``wr.step()``, median hook and ``wr.step()`` seconds, and
    how much more the means of the two steps differ than their medians (the flushes, amortised).

    ``every=None``: no collector on the second copy either (the comparison's noise floor).
    """
    base = make()
    plain, watched = Trainer(copy.deepcopy(base), x, y), Trainer(copy.deepcopy(base), x, y)
    wr = Collector(watched.model, tmp, every=every, optimizer=watched.opt) if every else None
    capture = wr._capture if wr else None  # the hooks' own clock, read only for the split printed below
    plains, steps, hooks, calls = [], [], [], []

    def with_collector():
        h0 = capture.seconds if capture is not None else 0.0
        t0 = time.perf_counter()
        loss = watched.step()
        t1 = time.perf_counter()
        if wr:
            wr.step(loss=loss)
        t2 = time.perf_counter()
        steps.append(t2 - t0)
        calls.append(t2 - t1)
        hooks.append((capture.seconds if capture is not None else 0.0) - h0)

    for p in range(pairs + 2):  # the first two pairs warm up
        pair = [lambda: plains.append(timed(plain.step)), with_collector]
        for f in (pair if p % 2 == 0 else pair[::-1]):
            f()
    if wr:
        wr.close()
    med = [statistics.median(v[2:]) for v in (plains, steps, hooks, calls)]
    # what the flushes (and any spikes) add on average, whichever thread or step pays for them
    flush = (statistics.mean(steps[2:]) - statistics.mean(plains[2:])) - (med[1] - med[0])
    return med[0], med[1], med[2], med[3], flush


def off_cadence(make, x, y, tmp: Path, rounds: int = OFF_ROUNDS) -> tuple[float, float, float]:
    """Median steps of one copy: with no collector, with a collector that is not due, and with
    no collector again (the control: how far two identical phases differ here).

    Each round runs the three phases of ``OFF_STEPS`` steps, in an order that rotates every
    round: a collector is attached (``every`` huge) for its phase and closed after it (which
    removes its hooks). The first ``OFF_WARM`` steps of each phase are not counted: right
    after the collector is created (two copies of the weights, the step-0 snapshot) or
    closed, the next two steps took 20 and 10 ms longer, and the rest were even. One copy,
    so where its memory lies is the same throughout.
    """
    t = Trainer(make(), x, y)
    t.step()
    spent = {"bare": [], "quiet": [], "control": []}
    phases = list(spent)
    for r in range(rounds):
        for phase in phases[r % 3:] + phases[: r % 3]:
            wr = Collector(t.model, tmp / f"round-{r}", every=10**9, optimizer=t.opt) if phase == "quiet" else None
            for k in range(OFF_WARM + OFF_STEPS):
                t0 = time.perf_counter()
                loss = t.step()
                if wr is not None:
                    wr.step(loss=loss)
                if k >= OFF_WARM:
                    spent[phase].append(time.perf_counter() - t0)
            if wr is not None:
                wr.close()
                shutil.rmtree(tmp / f"round-{r}")
    return tuple(statistics.median(spent[phase]) for phase in phases)


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
    net = resnet18()
    print(f"ResNet-18 class: {sum(p.numel() for p in net.parameters()) / 1e6:.1f}M parameters, "
          f"{sum(1 for _ in net.parameters())} tensors, batch 32 at 32x32, {torch.get_num_threads()} threads")
    tp, ts, th, tc, _ = compare(resnet18, x, y, tmp / "resnet", every=1)
    print(f"  plain step                  {tp * 1e3:8.1f} ms")
    print(f"  snapshot step               {ts * 1e3:8.1f} ms  (hooks {th * 1e3:.1f} ms, wr.step {tc * 1e3:.1f} ms)")
    snap = (ts - tp) / tp
    qp, qs, qc = off_cadence(resnet18, x, y, tmp)
    off, same = (qs - qp) / qp, (qc - qp) / qp
    print(f"  plain step, one copy        {qp * 1e3:8.1f} ms  (again, in its own phases: {qc * 1e3:.1f} ms)")
    print(f"  off-cadence, the same copy  {qs * 1e3:8.1f} ms")
    cp, cs, _, _, _ = compare(resnet18, x, y, tmp / "control", every=None)
    control = (cs - cp) / cp
    print(f"  plain step, another copy    {cs * 1e3:8.1f} ms  (control: no collector on either copy)")

    xs = torch.randn(32, 32)
    small = many_small()
    n = sum(1 for _ in small.parameters())
    sp, ss, sh, sc, sf = compare(many_small, xs, None, tmp / "small", every=1, pairs=SMALL_PAIRS)
    per = (ss - sp) / n
    print(f"{n} small tensors ({sum(p.numel() for p in small.parameters()) / 1e3:.0f}k parameters), batch 32")
    print(f"  plain step                  {sp * 1e3:8.1f} ms")
    print(f"  snapshot step               {ss * 1e3:8.1f} ms  (hooks {sh * 1e3:.1f} ms, wr.step {sc * 1e3:.1f} ms)")
    print(f"  flushes, amortised          {sf * 1e3:8.1f} ms  (the means' difference less the medians')")
    print()
    print(f"snapshot step, ResNet-18 class   {snap:+8.1%}   (target <= +50 %)")
    print(f"fixed cost per tensor            {per * 1e6:8.1f} us  (target <= 50 us; "
          f"{(per + sf / n) * 1e6:.1f} us with the flushes amortised)")
    print(f"off-cadence, ResNet-18 class     {off:+8.2%}   (target <= +1 %; the copy's two plain phases "
          f"differed by {same:+.2%}, two plain copies by {control:+.2%})")


if __name__ == "__main__":
    main()
