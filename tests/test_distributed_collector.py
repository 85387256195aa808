"""The Collector under DDP and FSDP2 (2 gloo ranks on CPU) records what one process would.

Each scenario trains the same model on the same global batch twice: once in this
process, once split over two ranks. Element counts must match exactly; moments to a
tight tolerance; only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from collectives import count_collectives
from torch import nn

from weightreport import Collector, load_run
from weightreport.runfmt.schema import QUANTILES
from weightreport.stats import SMALL

WORLD = 2
STEPS = 4


class _Reused(nn.Module):
    """One ReLU applied twice, to 32 and to 1100 units: its calls are ``relu`` and ``relu#2``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.relu, self.fc2, self.out = nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1100), nn.Linear(1100, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.relu(self.fc2(self.relu(self.fc1(x)))))


def _model(scenario: str = "") -> nn.Module:
    torch.manual_seed(0)
    if scenario == "ddp_reused":
        return _Reused()
    if scenario == "ddp_bn":
        return nn.Sequential(nn.Linear(6, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 3))
    # Linear(32, 1100)'s weight and its activations (16 × 1100) pass stats.SMALL: both paths run.
    return nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1100), nn.Tanh(), nn.Linear(1100, 3))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 6, generator=g)
    x[:, 0] = -5.0  # keep some units of the first layer dead across the whole batch
    return x, torch.randint(0, 3, (16,), generator=g)


def _train(model, run_dir, x, y, wrapped=None, calls=None, fail_at=None) -> None:
    """Train STEPS steps with a snapshot at each; ``calls`` gets each step's collectives.

    ``fail_at``: the step after which the loop raises (on every rank).
    """
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    forward = wrapped or model
    # Activations are described whole (no sampling), so that both runs see the same values.
    with Collector(wrapped or model, run_dir, every=1, optimizer=opt, activation_sample=1 << 15) as wr:
        for _ in range(STEPS):
            opt.zero_grad()
            nn.functional.cross_entropy(forward(x), y).backward()
            opt.step()
            _, step_calls = count_collectives(wr.step)
            if calls is not None:
                calls.append(step_calls)
            if wr.current_step == fail_at:
                msg = "the loss is NaN"
                raise RuntimeError(msg)


def _train_rank(rank: int, folder: str, scenario: str) -> None:
    """This rank's share of the training; its DDP/FSDP objects die with this frame."""
    x, y = _batch()
    half = slice(rank * 8, rank * 8 + 8)
    model = _model(scenario)
    calls: list = []
    if scenario == "ddp_fail":
        wrapped = nn.parallel.DistributedDataParallel(model)
        with contextlib.suppress(RuntimeError):
            _train(model, os.path.join(folder, "run"), x[half], y[half], wrapped, fail_at=2)
    elif scenario.startswith("ddp"):
        wrapped = nn.parallel.DistributedDataParallel(model)
        _train(model, os.path.join(folder, "run"), x[half], y[half], wrapped, calls)
    else:
        from torch.distributed.fsdp import fully_shard

        for layer in model:
            if isinstance(layer, nn.Linear):
                fully_shard(layer)
        fully_shard(model)
        _train(model, os.path.join(folder, "run"), x[half], y[half], calls=calls)
    with open(os.path.join(folder, f"calls-{rank}.json"), "w") as f:
        json.dump(calls, f)


def _worker(rank: int, port: int, folder: str, scenario: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    try:
        _train_rank(rank, folder, scenario)
        gc.collect()  # DDP's reducer must go before its process group, or gloo aborts
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _spawn(tmp_path, scenario: str):
    with socket.socket() as s:  # a free port on the loopback interface only
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, str(tmp_path), scenario), nprocs=WORLD)
    single = tmp_path / "single"
    x, y = _batch()
    _train(_model(scenario), single, x, y)
    return load_run(tmp_path / "run"), load_run(single)


def _assert_one_collective_per_snapshot(folder) -> None:
    """Every snapshot step made one small collective, the same on every rank."""
    for rank in range(WORLD):
        calls = json.loads((folder / f"calls-{rank}.json").read_text())
        assert calls == [["all_gather"]] * STEPS, (rank, calls)


def _compare(split, single, kinds) -> None:
    a = split.tables["stats"].set_index(["step", "tensor", "kind"]).sort_index()
    b = single.tables["stats"].set_index(["step", "tensor", "kind"]).sort_index()
    a = a[a.index.get_level_values("kind").isin(kinds)]
    b = b[b.index.get_level_values("kind").isin(kinds)]
    assert list(a.index) == list(b.index)
    assert a["count"].max() > SMALL  # the large path is exercised
    for column in ("numel", "count", "nan_count", "inf_count", "units", "dead_units",
                   "saturated_units", "zeros", "outliers_3std", "outliers_6std", "outliers_iqr"):
        assert a[column].fillna(-1).tolist() == b[column].fillna(-1).tolist(), column
    for column in ("mean", "std", "norm", "min", "max", *(f"p{q}" for q in QUANTILES)):
        assert np.allclose(a[column], b[column], rtol=1e-4, atol=1e-6), column
    params = [k for k in kinds if k == "param"]
    if params:
        first = a.loc[0]
        assert first["count"].sum() == sum(p.numel() for p in _model().parameters())


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_ddp_run_matches_one_process(tmp_path):
    """Under DDP, parameters count once and activations cover the global batch."""
    split, single = _spawn(tmp_path, "ddp")
    assert split.manifest["status"] == "complete"
    _assert_one_collective_per_snapshot(tmp_path)
    assert [m["name"] for m in split.manifest["model"]["modules"]][:2] == ["", "0"]
    _compare(split, single, ("param", "grad", "activation"))
    acts = split.tables["stats"].query("kind == 'activation' and tensor == '1'")
    assert (acts["dead_units"] > 0).all()  # the forced-dead units were seen on both ranks
    traj_a = split.tables["trajectories"].sort_values(["step", "tensor", "index"])
    traj_b = single.tables["trajectories"].sort_values(["step", "tensor", "index"])
    assert np.allclose(traj_a.value, traj_b.value, rtol=1e-5, atol=1e-7)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_ddp_reused_module_calls_merge_by_name(tmp_path):
    """Every rank captures both calls of a reused ReLU under the same names; merged, they equal one process's."""
    split, single = _spawn(tmp_path, "ddp_reused")
    _assert_one_collective_per_snapshot(tmp_path)
    _compare(split, single, ("activation",))
    acts = split.tables["stats"].query("kind == 'activation'")
    assert {"relu", "relu#2"} <= set(acts["tensor"])
    assert set(acts.query("tensor == 'relu#2'")["units"]) == {1100}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_fsdp2_run_matches_one_process(tmp_path):
    """Under FSDP2, sharded parameters are described whole, with the unwrapped names."""
    split, single = _spawn(tmp_path, "fsdp")
    assert split.manifest["status"] == "complete"
    _assert_one_collective_per_snapshot(tmp_path)
    _compare(split, single, ("param", "grad", "activation"))
    s = split.tables["stats"].query("kind == 'param' and step == 0")
    assert sorted(s.tensor) == sorted(n for n, _ in _model().named_parameters())
    ratios = split.tables["stats"].query("kind == 'param' and step > 0")["update_ratio"]
    ref = single.tables["stats"].query("kind == 'param' and step > 0")["update_ratio"]
    assert np.allclose(ratios.fillna(0).to_numpy(), ref.fillna(0).to_numpy(), rtol=1e-3)
    traj_a = split.tables["trajectories"].sort_values(["step", "tensor", "index"])
    traj_b = single.tables["trajectories"].sort_values(["step", "tensor", "index"])
    assert traj_a[["step", "tensor", "index"]].values.tolist() == traj_b[["step", "tensor", "index"]].values.tolist()
    assert np.allclose(traj_a.value, traj_b.value, rtol=1e-5, atol=1e-7)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_ddp_batchnorm_batch_statistics_cover_the_global_batch(tmp_path):
    """Under DDP, a BatchNorm layer's batch mean and var are those of the global batch.

    Only the first captured forward is compared: after it the ranks normalise with
    their own half-batch statistics, so the two trainings part ways.
    """
    split, single = _spawn(tmp_path, "ddp_bn")
    a, b = split.tables["batchnorm"], single.tables["batchnorm"]
    first = min(a.step)
    a = a[a.step == first].sort_values("channel")
    b = b[b.step == first].sort_values("channel")
    assert len(a) == len(b) == 32
    assert np.allclose(a.batch_mean, b.batch_mean, rtol=1e-5, atol=1e-6)
    assert np.allclose(a.batch_var, b.batch_var, rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_failed_ddp_run_keeps_what_needs_no_other_rank(tmp_path):
    """An exception marks the run failed without a collective; every finished snapshot is kept.

    The last snapshot still owed its activations' counts by the next collective, which
    a failed run never makes: its replicated parameters and gradients are written, its
    split activations are not.
    """
    split, _single = _spawn(tmp_path, "ddp_fail")
    assert split.manifest["status"] == "failed"
    assert "the loss is NaN" in split.manifest["error"]
    stats = split.tables["stats"]
    assert sorted(set(stats.step)) == [0, 1, 2]
    kinds = stats.groupby("step")["kind"].agg(set).to_dict()
    assert kinds[1] == {"param", "grad", "activation"}
    assert "activation" not in kinds[2]
    assert {"param", "grad"} <= kinds[2]
