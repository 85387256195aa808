"""Where the whole run's wall clock exceeds the collector's own: training steps of four copies.

Run: python bench/training_split.py [rounds]   (CPU; 300 rounds by default, about 5 minutes
at 0.23 s a step)

The reference CNN of ``collector_overhead.py``, four copies with the same weights, one
training step of each per round in an order that rotates every round and reverses every
fourth, so that drift on a shared machine falls on all alike:

- two bare copies (their difference is the noise floor),
- one with a collector that never snapshots after step 0 (``every`` huge, activations on):
  what hooks that stay unarmed cost a training step,
- one at the defaults (``every=10``, activations on).

Only the training step (forward, backward, ``opt.step()``) is timed; ``wr.step()`` is timed
apart. Each collector copy's training total is set against the bare copies' mean, and the
defaults copy's excess is split by position in the cadence: the snapshot steps (whose
forward runs the armed hooks; their own clock is printed beside it), the step after, and
the rest.
"""

from __future__ import annotations

import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from collector_overhead import Trainer, make_model

from weightreport import Collector

torch.set_num_threads(2)


def main(rounds: int) -> None:
    base = make_model()
    trainers = [Trainer(copy.deepcopy(base)) for _ in range(4)]
    tmp = Path(tempfile.mkdtemp())
    collectors = [None, None,
                  Collector(trainers[2].model, tmp / "quiet", every=10**9, optimizer=trainers[2].opt),
                  Collector(trainers[3].model, tmp / "defaults", optimizer=trainers[3].opt)]
    names = ["bare copy A", "bare copy B", "unarmed hooks (every huge)", "defaults (every=10)"]
    train = [[] for _ in trainers]
    calls = [[] for _ in trainers]
    hooks = []  # the defaults copy's armed-hook seconds, step by step
    capture = collectors[3]._capture  # the hooks' own clock, read only for the split below
    for r in range(rounds):
        order = [(k + r) % 4 for k in range(4)]
        for j in (order[::-1] if (r // 4) % 2 else order):
            h0 = capture.seconds
            t0 = time.perf_counter()
            loss = trainers[j].step()
            t1 = time.perf_counter()
            if collectors[j] is not None:
                collectors[j].step(loss=loss)
            calls[j].append(time.perf_counter() - t1)
            train[j].append(t1 - t0)
            if j == 3:
                hooks.append(capture.seconds - h0)
    for wr in collectors[2:]:
        wr.close()
    bare = [(a + b) / 2 for a, b in zip(train[0], train[1], strict=True)]
    for j, name in enumerate(names):
        print(f"{name:28s} training {sum(train[j]):7.2f} s ({sum(train[j]) / sum(bare) - 1:+.2%} against the "
              f"bare mean), median step {statistics.median(train[j]) * 1e3:6.1f} ms, wr.step {sum(calls[j]):.2f} s")
    excess = [w - b for w, b in zip(train[3], bare, strict=True)]
    where = {"snapshot steps": 0, "the step after": 1}
    for label, phase in where.items():
        at = [i for i in range(rounds) if (i + 1) % 10 == phase]
        picked = [excess[i] for i in at]
        print(f"  defaults, {label:15s} excess {sum(picked) * 1e3:8.1f} ms in all, mean {statistics.mean(picked) * 1e3:6.2f}, "
              f"median {statistics.median(picked) * 1e3:6.2f} ms a step"
              + (f" (armed hooks' own clock: median {statistics.median(hooks[i] for i in at) * 1e3:.2f} ms)"
                 if phase == 0 else ""))
    rest = [excess[i] for i in range(rounds) if (i + 1) % 10 not in where.values()]
    print(f"  defaults, the other steps     excess {sum(rest) * 1e3:8.1f} ms in all, mean {statistics.mean(rest) * 1e3:6.2f}, "
          f"median {statistics.median(rest) * 1e3:6.2f} ms a step")
    worst = sorted(excess, reverse=True)[:3]
    print(f"  its three slowest steps against the bare mean: {', '.join(f'+{w * 1e3:.0f}' for w in worst)} ms; "
          f"bare A against B at most {max(abs(a - b) for a, b in zip(train[0], train[1], strict=True)) * 1e3:.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
