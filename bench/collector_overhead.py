"""Overhead of the collector against a plain step, TensorBoard histograms and a read-once floor.

Run: python bench/collector_overhead.py   (CPU; needs tensorboard)

Same model and method as ../shared/bench/anchor_overhead.py: the CNN with BatchNorm of
about 2.4M parameters, a batch of 32 × 3×32×32, SGD, two threads, all in one process.
Medians of 15 timings, and of 40 interleaved pairs for whole steps (the first pair is
a warm-up): with the anchor's 7 the activation and off-cadence figures moved by ±5 %
between runs on a shared two-core machine. What is timed:
- a plain training step;
- one snapshot of every parameter and gradient (activations off): the collector's
  own ``_taker.take(...)``, i.e. every statistic, histogram, trajectory and update
  norm with its host transfer, without the Parquet write (which happens once per
  ``flush_every`` snapshots, off the per-snapshot path);
- TensorBoard's ``SummaryWriter.add_histogram`` for every parameter and gradient;
- the read-once floor (the anchor's ``floor()``);
- a full snapshot step (training step + ``wr.step()``) with activations on and off,
  interleaved (the machine may be shared, so pairs are alternated rather than run in blocks);
- a step that is not a snapshot, with the collector attached, against a plain step.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.tensorboard import SummaryWriter

from weightreport import Collector

torch.manual_seed(0)
torch.set_num_threads(2)

PAIRS = 40
"""Interleaved step pairs per comparison: with 16, the activation figure moved between
2.5 % and 7 % from run to run on a shared machine, for a cost of about 2 %."""


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


model = nn.Sequential(block(3, 64), block(64, 128), nn.MaxPool2d(2), block(128, 256), block(256, 256),
                      nn.MaxPool2d(2), block(256, 512), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
nparams = sum(p.numel() for p in model.parameters())
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(32, 3, 32, 32)
y = torch.randint(0, 10, (32,))


def step():
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()


def timeit(f, n=15):
    f()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


tmp = Path(tempfile.mkdtemp())
w = SummaryWriter(str(tmp / "tb"))
k = [0]


def tb():
    k[0] += 1
    for name, p in model.named_parameters():
        w.add_histogram(name, p, k[0])
        w.add_histogram(name + ".grad", p.grad, k[0])


def floor():
    s = 0.0
    for p in model.parameters():
        s += p.detach().sum().item() + p.grad.sum().item()


def main() -> None:
    print(f"params={nparams / 1e6:.2f}M  threads={torch.get_num_threads()}")
    step()  # gradients exist from here on
    ts = timeit(step)
    print(f"train step                  {ts * 1e3:8.1f} ms")

    # One parameters-and-gradients snapshot: the collector's snapshot taker itself.
    off = Collector(model, tmp / "off", every=1, activations=False, flush_every=10**6)
    tk = [0]

    def snapshot():
        tk[0] += 1
        off._taker.take(tk[0], off.model, {})

    tsnap = timeit(snapshot)
    tt = timeit(tb)
    tf = timeit(floor)
    print(f"collector snapshot          {tsnap * 1e3:8.1f} ms  ({tsnap / ts:.2%} of step)")
    print(f"tensorboard add_histogram   {tt * 1e3:8.1f} ms  ({tt / ts:.2%} of step)")
    print(f"read-once floor             {tf * 1e3:8.1f} ms  ({tf / ts:.2%} of step)")
    off._writer._rows = {name: [] for name in off._writer._rows}  # drop the benchmark's rows
    off.close()

    # Whole snapshot steps through wr.step(), activations off and on (every=1: every step snapshots).
    def snapshot_step(wr):
        def f():
            step()
            wr.step()
        return f

    # Interleaved so that drift and other load affect both alike. While the "off" collector
    # steps, the "on" collector's hooks are disarmed by hand (both watch the same model).
    c_off = Collector(model, tmp / "steps_off", every=1, activations=False, flush_every=10**6)
    c_on = Collector(model, tmp / "steps_on", every=1, activations=True, flush_every=10**6)
    offs, ons = [], []

    def timed_off():
        c_on._capture.armed = False
        t = time.perf_counter()
        snapshot_step(c_off)()
        offs.append(time.perf_counter() - t)

    def timed_on():
        c_on._capture.armed = True
        t = time.perf_counter()
        snapshot_step(c_on)()
        ons.append(time.perf_counter() - t)

    for k in range(PAIRS + 1):  # the order alternates, so that neither side always follows the other
        first, second = (timed_off, timed_on) if k % 2 == 0 else (timed_on, timed_off)
        first()
        second()
    t_off, t_on = statistics.median(offs[1:]), statistics.median(ons[1:])
    for c in (c_off, c_on):
        c._writer._rows = {name: [] for name in c._writer._rows}
        c.close()
    print(f"snapshot step, acts off     {t_off * 1e3:8.1f} ms")
    print(f"snapshot step, acts on      {t_on * 1e3:8.1f} ms")

    # Steps that are not snapshots: every is huge, so only step 0 snapshots. Interleave
    # plain and collector steps so drift affects both alike.
    with Collector(model, tmp / "quiet", every=10**9, activations=True) as quiet:
        plain, with_c = [], []
        for _ in range(PAIRS + 1):
            t = time.perf_counter()
            step()
            plain.append(time.perf_counter() - t)
            t = time.perf_counter()
            step()
            quiet.step()
            with_c.append(time.perf_counter() - t)
    tp, tq = statistics.median(plain[1:]), statistics.median(with_c[1:])
    print(f"plain step (interleaved)    {tp * 1e3:8.1f} ms")
    print(f"non-snapshot step + coll.   {tq * 1e3:8.1f} ms")

    print()
    print(f"snapshot / TensorBoard      {tsnap / tt:8.3f}   (target <= 0.1)")
    print(f"snapshot / floor            {tsnap / tf:8.2f}   (target <= 10)")
    print(f"activation capture overhead {(t_on - t_off) / t_off:8.2%}   of a snapshot step (target <= 5 %)")
    print(f"off-cadence overhead        {(tq - tp) / tp:8.2%}   of a plain step (target: within noise)")


if __name__ == "__main__":
    main()
