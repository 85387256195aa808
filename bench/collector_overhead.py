"""What the collector costs a training loop, measured the way users pay it.

Run: python bench/collector_overhead.py [steps] [whole] [cuda]   (needs tensorboard; both parts
by default, on the CPU; ``cuda`` runs the same on the first GPU, each timed call ended by
``torch.cuda.synchronize()``; ``bench/cuda_check.py`` says how to run it on a lent machine.
A training step of this model took 0.25–0.9 s on this project's shared 2-core machines: the
steps part takes 5–10 minutes, the whole run (2 × 2 × 1,000 steps) 16–60.)

Same model as ../shared/bench/anchor_overhead.py: the CNN with BatchNorm of about 2.4M
parameters, a batch of 32 × 3×32×32, SGD, two threads, all in one process. Every figure
goes through the public API, right after a real training step, in the order a training
loop calls it (forward, backward, ``opt.step()``, then ``wr.step()``):

- **snapshot**: ``wr.step()`` of a collector with ``every=1, activations=False`` (every
  parameter's and gradient's statistics, histogram, trajectory and update norms, and the
  Parquet write once per ``flush_every``), timed right after a real step;
- **TensorBoard**: ``SummaryWriter.add_histogram`` for every parameter and gradient,
  timed right after a real step;
- **floor**: the anchor's read-once floor (one ``sum().item()`` per tensor), timed right
  after a real step.
  The three are interleaved round by round, in rotating order, so that drift and other
  load on a shared machine fall on all of them alike; means of ``ROUNDS`` (40: four of
  the snapshot's flushes, whose share the mean includes), the snapshot's median beside.
- **activation capture**: a whole snapshot step (training step + ``wr.step()``) with
  ``activations=True`` against one with ``activations=False``, on two copies of the model
  with the same weights, interleaved in alternating order; medians of ``PAIRS``.
- **off-cadence**: a step that is not a snapshot (collector attached, ``every`` huge)
  against the mean of two plain copies, interleaved; medians of ``PAIRS``. The plain
  copies' own difference is printed beside it: two copies of one model differ by a per
  cent or two on these machines, with no collector at all.
- **whole run**: ``STEPS`` steps at the defaults (``every=10``, activations on,
  ``flush_every=10``) against the same loop without the collector, on two copies of the
  model, one step of each in turn (the order flips every step), so that load on a shared
  machine falls on both alike. It runs twice, the copies' roles swapped: two copies of
  one model differ by a per cent or two with no collector at all (where their memory
  lies), as much as the target, and the swap cancels that. Totals at 200 and at
  ``STEPS`` steps come from the same runs; creating the collector and ``close`` are
  timed apart and added to the collector's side. Both runs are charged the first run's
  start-up, which includes numba's import and kernel loading, as every user's run pays
  it (the second run's own is printed beside it). The collector's own record of its
  cost (run.json ``overhead``) is printed beside each.
"""

from __future__ import annotations

import copy
import json
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

ROUNDS = 40
"""Rounds of (step + snapshot, step + TensorBoard, step + floor): four flushes of the snapshot's
collector (``flush_every=10``)."""
PAIRS = 40
"""Interleaved step pairs per comparison of whole steps: with 16, the activation figure
moved between 2.5 % and 7 % from run to run on a shared machine."""
STEPS = 1000
"""Steps of the whole-run comparison (100 snapshots at every=10)."""
CHECKPOINTS = (200, STEPS)
"""Steps at which the whole run's cumulative totals are printed, from the same run."""


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(block(3, 64), block(64, 128), nn.MaxPool2d(2), block(128, 256), block(256, 256),
                         nn.MaxPool2d(2), block(256, 512), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


DEVICE = torch.device("cpu")
"""Where the models and the batch live: ``cuda`` on the command line moves them to the GPU."""
x = torch.randn(32, 3, 32, 32)
y = torch.randint(0, 10, (32,))


class Trainer:
    """A model, its optimizer, and one real training step."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step(self) -> float:
        self.opt.zero_grad()
        loss = nn.functional.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss.item()


def timed(f) -> float:
    """Seconds ``f`` takes, on a GPU until the work it queued is done."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    f()
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def whole_run(watched: Trainer, bare: Trainer, run_dir: Path) -> dict:
    """``STEPS`` steps of ``watched`` at the defaults, one step of ``bare`` beside each.

    Returns:
        ``startup`` (creating the collector: numba's start-up on the first run, the step-0
        snapshot) and ``close`` in seconds, ``at``: steps → (bare, watched) totals at each
        of ``CHECKPOINTS``, the start-up not included, and run.json's ``collector_s``.
    """
    t0 = time.perf_counter()
    wr = Collector(watched.model, run_dir, optimizer=watched.opt)
    startup = time.perf_counter() - t0
    total_bare = total_watched = 0.0
    at = {}

    def one_bare():
        bare.step()

    def one_watched():
        wr.step(loss=watched.step())

    for i in range(1, STEPS + 1):
        first, second = (one_bare, one_watched) if i % 2 else (one_watched, one_bare)
        spent = timed(first), timed(second)
        total_bare += spent[0] if i % 2 else spent[1]
        total_watched += spent[1] if i % 2 else spent[0]
        if i in CHECKPOINTS:
            at[i] = (total_bare, total_watched)
    closing = timed(wr.close)
    recorded = json.loads((run_dir / "run.json").read_text())["overhead"]
    return {"startup": startup, "close": closing, "at": at, "collector_s": recorded["collector_s"],
            "compile_s": recorded.get("compile_s", 0.0)}


def main(parts: set[str]) -> None:
    """Run the ``parts`` asked for: ``steps`` (every per-step figure) and ``whole`` (the whole run)."""
    tmp = Path(tempfile.mkdtemp())
    base = make_model().to(DEVICE)
    nparams = sum(p.numel() for p in base.parameters())
    where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else "cpu"
    print(f"params={nparams / 1e6:.2f}M  threads={torch.get_num_threads()}  device={where}  torch={torch.__version__}")

    # The whole run first, so that its start-up includes numba's, as a user's run does.
    if "whole" in parts:
        # --- the whole run at the defaults, twice, the copies' roles swapped ------------------
        a, b = Trainer(copy.deepcopy(base)), Trainer(copy.deepcopy(base))
        halves = [whole_run(a, b, tmp / "whole-a"), whole_run(b, a, tmp / "whole-b")]
        startup = halves[0]["startup"]  # numba's import included: what every user's run pays
        for k, h in enumerate(halves):
            print(f"run {k + 1} (copy {'AB'[k]} watched): creating the collector {h['startup']:.2f} s, "
                  f"close {h['close']:.2f} s, run.json collector_s {h['collector_s']:.2f} s "
                  f"(compile_s {h['compile_s']:.2f} s) "
                  f"({h['collector_s'] / h['at'][STEPS][0]:.2%} of its bare loop)")
            for n, (tb, tw) in sorted(h["at"].items()):
                print(f"  {n:4d} steps: no collector {tb:8.2f} s, defaults {tw:8.2f} s "
                      f"({(tw + startup + h['close'] - tb) / tb:+.2%} with the start-up)")

    if "steps" in parts:
        # --- snapshot, TensorBoard and floor, each right after a real step ------------------
        t = Trainer(copy.deepcopy(base))
        t.step()
        wr = Collector(t.model, tmp / "snap", every=1, activations=False, optimizer=t.opt)
        writer = SummaryWriter(str(tmp / "tb"))
        k = [0]

        def tb():
            k[0] += 1
            for name, p in t.model.named_parameters():
                writer.add_histogram(name, p, k[0])
                writer.add_histogram(name + ".grad", p.grad, k[0])

        def floor():
            s = 0.0
            for p in t.model.parameters():
                s += p.detach().sum().item() + p.grad.sum().item()

        loss = [0.0]
        measures = {"snapshot": lambda: wr.step(loss=loss[0]), "tensorboard": tb, "floor": floor}
        times = {name: [] for name in measures}
        order = list(measures)
        for r in range(ROUNDS + 1):  # the first round warms up
            for name in order[r % 3:] + order[: r % 3]:
                loss[0] = t.step()
                spent = timed(measures[name])
                if r:
                    times[name].append(spent)
        wr.close()
        writer.close()
        # Means: a snapshot's rows become Arrow tables at its flush (every tenth), which a median would leave out.
        tsnap, ttb, tfloor = (statistics.mean(times[n]) for n in ("snapshot", "tensorboard", "floor"))
        snap_median = statistics.median(times["snapshot"])
        tstep = statistics.median(timed(t.step) for _ in range(10))
        print(f"train step                      {tstep * 1e3:8.1f} ms")
        print(f"snapshot (wr.step, after step)  {tsnap * 1e3:8.1f} ms  ({tsnap / tstep:.2%} of a step; "
              f"median {snap_median * 1e3:.1f} ms, without the flushes)")
        print(f"tensorboard add_histogram       {ttb * 1e3:8.1f} ms  ({ttb / tstep:.2%} of a step)")
        print(f"read-once floor                 {tfloor * 1e3:8.1f} ms  ({tfloor / tstep:.2%} of a step)")

        # --- activation capture: whole snapshot steps, on against off -----------------------
        on, off = Trainer(copy.deepcopy(base)), Trainer(copy.deepcopy(base))
        c_on = Collector(on.model, tmp / "on", every=1, activations=True, optimizer=on.opt)
        c_off = Collector(off.model, tmp / "off", every=1, activations=False, optimizer=off.opt)
        ons, offs = [], []

        def step_on():
            ons.append(timed(lambda: c_on.step(loss=on.step())))

        def step_off():
            offs.append(timed(lambda: c_off.step(loss=off.step())))

        for p in range(PAIRS + 1):
            first, second = (step_off, step_on) if p % 2 == 0 else (step_on, step_off)
            first()
            second()
        c_on.close()
        c_off.close()
        t_on, t_off = statistics.median(ons[1:]), statistics.median(offs[1:])
        print(f"snapshot step, activations off  {t_off * 1e3:8.1f} ms")
        print(f"snapshot step, activations on   {t_on * 1e3:8.1f} ms")

        # --- off-cadence steps ------------------------------------------------------------
        # Two plain copies and the watched one, in an order that flips every round: the plain
        # copies' difference is how far two copies of one model differ here (memory placement).
        plain, plain2, quiet_t = (Trainer(copy.deepcopy(base)) for _ in range(3))
        quiet = Collector(quiet_t.model, tmp / "quiet", every=10**9, activations=True, optimizer=quiet_t.opt)
        plains, plains2, quiets = [], [], []
        trio = [lambda: plains.append(timed(plain.step)),
                lambda: quiets.append(timed(lambda: quiet.step(loss=quiet_t.step()))),
                lambda: plains2.append(timed(plain2.step))]
        for p in range(PAIRS + 1):
            for f in (trio if p % 2 == 0 else trio[::-1]):
                f()
        quiet.close()
        tp, tp2, tq = (statistics.median(v[1:]) for v in (plains, plains2, quiets))
        print(f"plain step (interleaved)        {tp * 1e3:8.1f} ms  (another copy {tp2 * 1e3:.1f} ms)")
        print(f"off-cadence step + collector    {tq * 1e3:8.1f} ms")

    print()
    if "steps" in parts:
        print(f"snapshot / TensorBoard          {tsnap / ttb:8.3f}   (target <= 0.1, aim 0.05)")
        print(f"snapshot / floor                {tsnap / tfloor:8.2f}")
        print(f"activation capture overhead     {(t_on - t_off) / t_off:8.2%}   of a snapshot step")
        both = (tp + tp2) / 2
        print(f"off-cadence overhead            {(tq - both) / both:8.2%}   of a plain step "
              f"(the two plain copies differed by {(tp2 - tp) / tp:+.2%})")
    if "whole" in parts:
        for n in CHECKPOINTS:
            tb = sum(h["at"][n][0] for h in halves)
            tw = sum(h["at"][n][1] + startup + h["close"] for h in halves)
            past = sum(h["at"][n][1] for h in halves)
            print(f"whole-run overhead, {n:4d} steps  {(tw - tb) / tb:8.2%}   "
                  f"(both runs; past the start-up {(past - tb) / tb:.2%}; target <= 1 %)")


if __name__ == "__main__":
    import sys

    words = set(sys.argv[1:])
    if "cuda" in words:
        DEVICE = torch.device("cuda")
        x, y = x.to(DEVICE), y.to(DEVICE)
    main(words - {"cuda"} or {"steps", "whole"})
