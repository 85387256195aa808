"""The CUDA checks (issue 14, item 6), prepared as one short run for a lent GPU machine.

Run, on a machine whose ``python3`` holds a CUDA torch (about two minutes on one GPU):

    PYTHONPATH=. python3 bench/cuda_check.py
    PYTHONPATH=. python3 bench/collector_overhead.py steps whole cuda

``python bench/cuda_check.py cpu`` runs the same steps with both sides on the CPU, to try the
script where there is no GPU (its counts then agree trivially, and it sees no transfers).

It exits 1 when a count differs or a snapshot makes more than one host transfer, after
printing everything it found. Three parts, on the reference CNN of
``bench/collector_overhead.py`` (2.41M parameters, BatchNorm, batch 32 of 3×32×32):

1. **Parameters and gradients: the same counts as on the CPU.** One backward on the CPU
   gives the gradients; NaN, +Inf and −Inf are planted in one gradient and zeros in one
   weight. A copy on the GPU is given the same weights, gradients and BatchNorm buffers,
   so both describe the very same numbers. Each is watched by a collector (``every=1``,
   activations off) through one snapshot after the step-0 one. Every integer and flag
   column of the stats table (counts, NaN and Inf counts, zeros, the outlier counts,
   ``quantiles_exact``) and every histogram's edges and counts must be equal; the float columns may differ by summation
   order, and their largest relative difference is printed (more than 1e-6 fails).
2. **Activations and BatchNorm: the same units.** The model in float64 on both sides,
   the same batch, each side's own forward and backward (so the values differ in their last
   bits): the activation rows' element, NaN and unit counts and the dead units must be
   equal; the sampled statistics and the BatchNorm batch statistics are compared within
   1e-6.
3. **Host transfers.** ``torch.profiler`` records snapshot steps on the GPU with
   activations on: the device-to-host copies (its ``Memcpy DtoH`` events) inside each
   ``wr.step()`` must be one, and those in the armed hooks' forward are printed beside it
   (the hooks queue their work on the device and read nothing back).
"""

from __future__ import annotations

import copy
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
import torch.nn as nn

from weightreport import Collector, load_run
from weightreport.runfmt.schema import STAT_COLUMNS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from collector_overhead import make_model  # the reference CNN, one definition

EXACT_COLUMNS = tuple(name for name, kind in STAT_COLUMNS
                      if name != "step" and (pa.types.is_integer(kind) or pa.types.is_boolean(kind)))
"""The stats table's counts and flags, which must be equal on both sides (from the run format)."""
FLOAT_TOLERANCE = 1e-6
SNAPSHOTS = 4
"""Profiled snapshot steps on the GPU (after one unprofiled, which warms up)."""

failures: list[str] = []


def fail(message: str) -> None:
    failures.append(message)
    print("  FAIL", message)


def batch(dtype=torch.float32):
    gen = torch.Generator().manual_seed(1)
    return (torch.randn(32, 3, 32, 32, generator=gen, dtype=dtype),
            torch.randint(0, 10, (32,), generator=gen))


def watched_rows(model: nn.Module, run_dir: Path, activations: bool, train=None):
    """The stats, histograms and batchnorm tables of a run of one snapshot after the step-0 one.

    ``train`` (if given) runs the forward and backward between the collector's creation and
    its step, so that the armed hooks see them."""
    wr = Collector(model, run_dir, every=1, activations=activations)
    if train is not None:
        train()
    wr.step()
    wr.close()
    run = load_run(run_dir)
    keys = ["step", "tensor", "kind"]
    stats = run.table("stats").sort_values(keys).reset_index(drop=True)
    hist = run.table("histograms").sort_values(keys).reset_index(drop=True)
    bn = run.table("batchnorm").sort_values(["step", "module", "channel"]).reset_index(drop=True)
    return stats, hist, bn


def compare_stats(label: str, a, b, exact=EXACT_COLUMNS) -> None:
    """Integer columns equal, float columns within ``FLOAT_TOLERANCE`` of their value or of the
    tensor's std, whichever is larger (NaN where the other is NaN)."""
    keys = ["step", "tensor", "kind"]
    if list(a[keys].itertuples(index=False)) != list(b[keys].itertuples(index=False)):
        fail(f"{label}: the two sides describe different tensors")
        return
    for column in exact:
        x, y = a[column].to_numpy(), b[column].to_numpy()
        same = (x == y) | (np.isnan(x.astype(float)) & np.isnan(y.astype(float)))
        if not same.all():
            row = int(np.flatnonzero(~same)[0])
            fail(f"{label}: {column} differs in {int((~same).sum())} rows, first "
                 f"{a['tensor'][row]} ({a['kind'][row]}): {x[row]} on the GPU, {y[row]} on the CPU")
    worst = {}
    spread = np.abs(a["std"].to_numpy())
    for column in a.columns:
        if column in exact or a[column].dtype != np.float64:
            continue
        x, y = a[column].to_numpy(), b[column].to_numpy()
        both_nan = np.isnan(x) & np.isnan(y)
        if (np.isnan(x) != np.isnan(y)).any():
            fail(f"{label}: {column} is NaN on one side only")
        # Relative to the value, or to the tensor's spread where the value is near 0 (a median).
        scale = np.maximum(np.maximum(np.abs(x), np.abs(y)), np.nan_to_num(spread, nan=0.0) + 1e-30)
        rel = np.where(both_nan | (x == y), 0.0, np.abs(x - y) / scale)
        worst[column] = float(np.nanmax(rel)) if rel.size else 0.0
    over = {c: v for c, v in worst.items() if v > FLOAT_TOLERANCE}
    for column, v in over.items():
        fail(f"{label}: {column} differs by {v:.2e} (relative)")
    top = sorted(worst.items(), key=lambda kv: -kv[1])[:4]
    print(f"  {label}: {len(a)} rows; counts and flags equal unless said above; largest float "
          "differences " + ", ".join(f"{c} {v:.1e}" for c, v in top))


def compare_histograms(label: str, a, b) -> None:
    bad = [(t, k) for t, k, ea, eb, ca, cb in zip(a["tensor"], a["kind"], a["edges"], b["edges"],
                                                  a["counts"], b["counts"], strict=True)
           if list(ea) != list(eb) or list(ca) != list(cb)]
    if bad:
        fail(f"{label}: {len(bad)} histograms differ, first {bad[0]}")
    else:
        print(f"  {label}: {len(a)} histograms, edges and counts equal")


def same_parameters(device: torch.device, tmp: Path) -> None:
    print("1. parameters and gradients, the same numbers on both sides")
    cpu = make_model()
    x, y = batch()
    nn.functional.cross_entropy(cpu(x), y).backward()
    params = dict(cpu.named_parameters())
    with torch.no_grad():
        grad = params["0.0.weight"].grad.view(-1)
        grad[:3] = torch.tensor([float("nan"), float("inf"), float("-inf")])
        params["9.weight"].view(-1)[:100] = 0.0
    gpu = copy.deepcopy(cpu).to(device)
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters(), strict=True):
        q.grad = p.grad.to(device)
        assert torch.equal(q.detach().cpu(), p.detach()), name
    on_gpu = watched_rows(gpu, tmp / "gpu", activations=False)
    on_cpu = watched_rows(cpu, tmp / "cpu", activations=False)
    compare_stats("stats", on_gpu[0], on_cpu[0])
    compare_histograms("histograms", on_gpu[1], on_cpu[1])
    planted = on_gpu[0].query("tensor == '0.0.weight' and kind == 'grad' and step == 1")
    print(f"  planted gradient on the GPU: nan_count {int(planted['nan_count'].iloc[0])}, "
          f"inf_count {int(planted['inf_count'].iloc[0])} (planted 1 and 2)")
    if (int(planted["nan_count"].iloc[0]), int(planted["inf_count"].iloc[0])) != (1, 2):
        fail("the planted NaN and Inf were not counted as planted")


def same_units(device: torch.device, tmp: Path) -> None:
    print("2. activations and BatchNorm, float64, each side's own forward")
    cpu = make_model().double()
    gpu = copy.deepcopy(cpu).to(device)
    x, y = batch(torch.float64)

    def trainer(model, dev):
        return lambda: nn.functional.cross_entropy(model(x.to(dev)), y.to(dev)).backward()

    g_stats, _, g_bn = watched_rows(gpu, tmp / "gpu64", activations=True, train=trainer(gpu, device))
    c_stats, _, c_bn = watched_rows(cpu, tmp / "cpu64", activations=True, train=trainer(cpu, torch.device("cpu")))
    kinds = ["activation", "bn_input", "bn_output"]
    g_act = g_stats[g_stats["kind"].isin(kinds)].reset_index(drop=True)
    c_act = c_stats[c_stats["kind"].isin(kinds)].reset_index(drop=True)
    # Zeros and outlier counts are left out here: each side's own float64 forward may put a
    # value on the other side of 0 or of a 3σ threshold, in its last bit.
    compare_stats("activations", g_act, c_act,
                  exact=("numel", "count", "nan_count", "inf_count", "units", "dead_units", "saturated_units"))
    if len(g_bn) != len(c_bn) or not len(g_bn):
        fail(f"batchnorm rows: {len(g_bn)} on the GPU, {len(c_bn)} on the CPU")
        return
    worst = 0.0
    for column in ("batch_mean", "batch_var", "running_mean", "running_var"):
        a, b = g_bn[column].to_numpy(), c_bn[column].to_numpy()
        rel = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-30)
        worst = max(worst, float(np.nanmax(rel)))
    print(f"  batchnorm: {len(g_bn)} channel rows; largest relative difference {worst:.1e}")
    if worst > FLOAT_TOLERANCE:
        fail(f"batchnorm statistics differ by {worst:.2e}")


def transfers(device: torch.device, tmp: Path) -> None:
    print("3. device-to-host copies in the snapshot steps")
    from torch.profiler import ProfilerActivity, profile

    model = make_model().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = (t.to(device) for t in batch())
    wr = Collector(model, tmp / "transfers", every=1, activations=True, optimizer=opt)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])

    def copies(f) -> int:
        """Device-to-host copies while ``f`` runs, each part profiled on its own (no correlating)."""
        with profile(activities=activities) as prof:
            f()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        return sum(1 for e in prof.events() if e.name.startswith("Memcpy DtoH"))

    losses = []

    def forward() -> None:
        losses.append(nn.functional.cross_entropy(model(x), y))

    for k in range(SNAPSHOTS + 1):  # the first warms up
        opt.zero_grad()
        in_forward = copies(forward)
        losses.pop().backward()
        opt.step()
        in_step = copies(wr.step)
        if k:
            print(f"  snapshot {k}: {in_step} in wr.step(), {in_forward} in the forward (armed hooks)")
            if device.type == "cuda" and in_step != 1:
                fail(f"snapshot {k} made {in_step} device-to-host transfers in wr.step(), not 1")
    wr.close()


def main() -> int:
    device = torch.device("cpu" if "cpu" in sys.argv[1:] else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run this on a lent GPU machine, or pass cpu to try it here")
        return 2
    torch.manual_seed(0)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (a dry run)"
    print(f"device {where}, torch {torch.__version__}")
    tmp = Path(tempfile.mkdtemp())
    same_parameters(device, tmp)
    same_units(device, tmp)
    transfers(device, tmp)
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
