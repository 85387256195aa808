"""The Collector: exact trajectories, cadence, selection, failure handling, bounded memory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import weightreport
from weightreport import Collector, WeightReportError, load_run


def _train_linear(path, epochs=100, every=1, **kwargs):
    """The seeds' example: nn.Linear(5, 1), MSE, SGD(lr=0.01) on 100 random samples, full batch."""
    torch.manual_seed(0)
    model = nn.Linear(5, 1)
    inputs, targets = torch.randn(100, 5), torch.randn(100, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    history = {0: (model.weight.detach().clone(), model.bias.detach().clone())}
    with Collector(model, path, every=every, optimizer=opt, **kwargs) as wr:
        for epoch in range(1, epochs + 1):
            loss = nn.functional.mse_loss(model(inputs), targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            history[epoch] = (model.weight.detach().clone(), model.bias.detach().clone())
            wr.step(loss=loss.item())
    return model, history


def test_linear_5_to_1_records_every_weight_exactly_at_every_epoch(tmp_path):
    """All 5 weights and the bias of the 5→1 model are recorded bit-exactly at each of 100 epochs."""
    _, history = _train_linear(tmp_path / "run")
    run = load_run(tmp_path / "run")
    traj = run.tables["trajectories"]
    assert run.manifest["trajectory_indices"] == {"weight": [0, 1, 2, 3, 4], "bias": [0]}
    assert sorted(traj["step"].unique()) == list(range(101))
    weight = traj[traj.tensor == "weight"].pivot(index="step", columns="index", values="value")
    bias = traj[traj.tensor == "bias"].set_index("step")["value"]
    for epoch, (w, b) in history.items():
        expected = w.reshape(-1).double().numpy()
        assert weight.loc[epoch].to_numpy().tolist() == expected.tolist()
        assert bias.loc[epoch] == float(b.item())
    # the weights really moved, so this is not a comparison of constants
    assert not np.array_equal(weight.loc[0].to_numpy(), weight.loc[100].to_numpy())
    scalars = run.tables["scalars"]
    assert sorted(scalars[scalars.name == "loss"].step) == list(range(1, 101))
    assert set(scalars[scalars.name == "lr"].value) == {0.01}
    assert run.manifest["status"] == "complete" and run.manifest["last_step"] == 100


def _mlp():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _train(model, wr, steps, x=None):
    x = torch.randn(16, 4) if x is None else x
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        wr.step()


def test_snapshot_cadence_and_final_snapshot(tmp_path):
    """Snapshots are taken at 0, every, 2·every, ..., plus the last step at close."""
    model = _mlp()
    with Collector(model, tmp_path / "run", every=3) as wr:
        _train(model, wr, 10)
    run = load_run(tmp_path / "run")
    stats = run.tables["stats"]
    assert sorted(stats[stats.kind == "param"].step.unique()) == [0, 3, 6, 9, 10]
    assert sorted(stats[stats.kind == "grad"].step.unique()) == [3, 6, 9, 10]
    assert sorted(stats[stats.kind == "activation"].step.unique()) == [3, 6, 9]
    assert run.manifest["snapshots"] == 5


def test_no_extra_snapshot_when_the_last_step_had_one(tmp_path):
    """close() after a snapshot step adds no second snapshot of the same step."""
    model = _mlp()
    with Collector(model, tmp_path / "run", every=5) as wr:
        _train(model, wr, 10)
    stats = load_run(tmp_path / "run").tables["stats"]
    params = stats[stats.kind == "param"]
    assert sorted(params.step.unique()) == [0, 5, 10]
    assert len(params[params.step == 10]) == 4


def test_hooks_are_unarmed_off_cadence(tmp_path):
    """On steps that are not snapshots the activation hooks are unarmed and capture nothing."""
    model = _mlp()
    x = torch.randn(16, 4)
    with Collector(model, tmp_path / "run", every=4) as wr:
        for step in range(1, 9):
            assert wr._capture.armed == (step % 4 == 0)
            model(x).sum().backward()
            captured = dict(wr._capture._captured)
            assert bool(captured) == (step % 4 == 0)
            wr.step()
        assert wr._capture.armed is False
    assert wr._capture._handles == []  # removed at close


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        (["0"], None, {"0.weight", "0.bias"}),
        (["[02]"], ["2"], {"0.weight", "0.bias"}),
        ([nn.Linear], None, {"0.weight", "0.bias", "2.weight", "2.bias"}),
        (None, [nn.Linear], set()),
        (None, ["2"], {"0.weight", "0.bias"}),
        ("2", None, {"2.weight", "2.bias"}),
    ],
)
def test_include_and_exclude_by_glob_and_type(tmp_path, include, exclude, expected):
    """include/exclude select modules by name glob or by type, for parameters and activations."""
    model = _mlp()
    with Collector(model, tmp_path / "run", every=1, include=include, exclude=exclude) as wr:
        _train(model, wr, 2)
    stats = load_run(tmp_path / "run").tables["stats"]
    assert set(stats[stats.kind == "param"].tensor) == expected
    modules = {name.rsplit(".", 1)[0] for name in expected}
    acts = set(stats[stats.kind == "activation"].tensor)
    if include is not None or exclude is not None:
        assert acts <= modules | {"1"}


def test_include_matching_nothing_is_an_error(tmp_path):
    """An include that matches no module fails at construction with WeightReportError."""
    with pytest.raises(WeightReportError, match="matches no module"):
        Collector(_mlp(), tmp_path / "run", include=["nope*"])


def test_exception_in_with_block_marks_run_failed_and_flushes(tmp_path):
    """An exception inside the with block marks the run failed with the error and still writes its data."""
    model = _mlp()
    with pytest.raises(RuntimeError, match="boom"), \
            Collector(model, tmp_path / "run", every=1, flush_every=100) as wr:
        _train(model, wr, 3)
        wr.log(val=1.5)
        msg = "boom"
        raise RuntimeError(msg)
    run = load_run(tmp_path / "run")
    assert run.manifest["status"] == "failed"
    assert run.manifest["error"] == "RuntimeError: boom"
    stats = run.tables["stats"]
    assert sorted(stats[stats.kind == "param"].step.unique()) == [0, 1, 2, 3]
    assert run.tables["scalars"].query("name == 'val'").step.tolist() == [3]
    with pytest.raises(WeightReportError, match="closed"):
        wr.step()


def test_writer_buffer_stays_bounded(tmp_path):
    """Over 2000 snapshot steps with flush_every=5 the unflushed buffer never exceeds five snapshots' rows."""
    torch.manual_seed(2)
    model = nn.Linear(2, 1)
    x = torch.randn(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    peak = 0
    with Collector(model, tmp_path / "run", every=1, flush_every=5, activations=False) as wr:
        per_snapshot = wr._writer.buffered  # rows of the initial snapshot (params only)
        for _ in range(2000):
            opt.zero_grad()
            model(x).sum().backward()
            opt.step()
            wr.step(loss=1.0)
            peak = max(peak, wr._writer.buffered)
    # one snapshot: 2 params + 2 grads, stats + histograms, 3 trajectory values, 1 scalar
    assert per_snapshot > 0
    assert peak <= 5 * (2 * 4 + 3 + 1)
    run = load_run(tmp_path / "run")
    assert run.manifest["snapshots"] == 2001
    assert len(run.tables["scalars"]) == 2000


def test_update_ratio_and_distance_from_init(tmp_path):
    """update_ratio = ‖w_t − w_prev‖/‖w_prev‖ and dist_from_init = ‖w_t − w_0‖ between snapshots."""
    model = _mlp()
    x = torch.randn(16, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    saved = {0: {n: p.detach().clone() for n, p in model.named_parameters()}}
    with Collector(model, tmp_path / "run", every=2) as wr:
        for step in range(1, 7):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
            wr.step()
            if step % 2 == 0:
                saved[step] = {n: p.detach().clone() for n, p in model.named_parameters()}
    stats = load_run(tmp_path / "run").tables["stats"].query("kind == 'param'")
    for row in stats.itertuples():
        w, w0 = saved[row.step][row.tensor], saved[0][row.tensor]
        assert row.dist_from_init == pytest.approx(float((w - w0).norm()), rel=1e-5, abs=1e-7)
        if row.step == 0:
            assert math.isnan(row.update_ratio)
        else:
            prev = saved[row.step - 2][row.tensor]
            expected = float((w - prev).norm() / prev.norm())
            assert row.update_ratio == pytest.approx(expected, rel=1e-5)
            assert row.update_ratio > 0


class _Mixed(nn.Module):
    """A large weight (compiled, fused norms), small ones (the host block's), and an empty one."""

    def __init__(self) -> None:
        super().__init__()
        self.big = nn.Linear(200, 100)  # 20,000 weights: beyond stats.SMALL
        self.small = nn.Linear(100, 3)
        self.empty = nn.Parameter(torch.empty(0))

    def forward(self, x):
        return self.small(torch.tanh(self.big(x))) + self.empty.sum()


def test_small_large_and_empty_parameters_get_exact_norms_and_trajectories(tmp_path):
    """Each kind of parameter's update ratio, distance from init and trajectory values match float64 ones."""
    torch.manual_seed(0)
    model = _Mixed()
    x = torch.randn(8, 200)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    saved = {0: {n: p.detach().double().clone() for n, p in model.named_parameters()}}
    with Collector(model, tmp_path / "run", every=1, activations=False) as wr:
        for step in range(1, 5):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
            wr.step()
            saved[step] = {n: p.detach().double().clone() for n, p in model.named_parameters()}
    run = load_run(tmp_path / "run")
    stats = run.tables["stats"].query("kind == 'param'")
    assert sorted(set(stats.tensor)) == sorted(n for n, _ in model.named_parameters())
    for row in stats.itertuples():
        w, w0 = saved[row.step][row.tensor], saved[0][row.tensor]
        if row.tensor == "empty":
            assert row.dist_from_init == 0.0
            continue
        assert row.dist_from_init == pytest.approx(float((w - w0).norm()), rel=1e-6, abs=1e-9)
        if row.step == 0:
            assert math.isnan(row.update_ratio)
        else:
            prev = saved[row.step - 1][row.tensor]
            assert row.update_ratio == pytest.approx(float((w - prev).norm() / prev.norm()), rel=1e-5)
    traj = run.tables["trajectories"]
    assert set(traj.tensor) == {"big.weight", "big.bias", "small.weight", "small.bias"}
    for row in traj.itertuples():
        assert row.value == float(saved[row.step][row.tensor].reshape(-1)[row.index])


def test_a_resumed_runs_first_snapshot_measures_from_the_first_init(tmp_path):
    """On resuming, the first snapshot's dist_from_init is ‖w − w₀‖ from the run's own init.pt, its update_ratio NaN."""
    model = _mlp()
    x = torch.randn(16, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    with Collector(model, tmp_path / "run", every=1) as wr:
        for _ in range(3):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
            wr.step()
    with torch.no_grad():
        model[0].weight.add_(0.5)  # moved between the sessions
    with Collector(model, tmp_path / "run", every=1, mode="resume") as wr:
        wr.step()  # step 4: the resumed session's first snapshot
    stats = load_run(tmp_path / "run").tables["stats"].query("kind == 'param' and step == 4")
    assert len(stats) == len(w0)
    for row in stats.itertuples():
        w = dict(model.named_parameters())[row.tensor].detach()
        assert row.dist_from_init == pytest.approx(float((w - w0[row.tensor]).norm()), rel=1e-5)
        assert math.isnan(row.update_ratio)


def test_scalars_log_and_learning_rates(tmp_path):
    """step() and log() record scalars at the right steps; several parameter groups give lr/group{i}."""
    model = _mlp()
    opt = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.1},
                           {"params": model[2].parameters(), "lr": 0.2}])
    with Collector(model, tmp_path / "run", every=10, optimizer=opt) as wr:
        wr.step(loss=torch.tensor(2.0), acc=0.5)
        wr.step(loss=float("nan"))
        wr.log(val_loss=3.0)
        with pytest.warns(RuntimeWarning, match="one number"):  # skipped, never raised into training
            assert wr.step(loss=torch.ones(3)) == 3
    scalars = load_run(tmp_path / "run").tables["scalars"]
    got = {(r.step, r.name): r.value for r in scalars.itertuples()}
    assert got[(1, "loss")] == 2.0 and got[(1, "acc")] == 0.5
    assert math.isnan(got[(2, "loss")]) and got[(2, "val_loss")] == 3.0
    assert got[(1, "lr/group0")] == 0.1 and got[(1, "lr/group1")] == 0.2
    assert (3, "loss") not in got and got[(3, "lr/group0")] == 0.1


@pytest.mark.parametrize("kwargs", [{"every": 0}, {"bins": 1}, {"flush_every": True},
                                    {"mode": "replace"}, {"budget": 0}, {"budget": 1.5},
                                    {"budget": True}])
def test_bad_options_are_rejected(tmp_path, kwargs):
    """Nonsensical options fail at construction with WeightReportError."""
    with pytest.raises(WeightReportError):
        Collector(_mlp(), tmp_path / "run", **kwargs)


def test_gradients_off_records_no_gradients(tmp_path):
    """gradients=False and activations=False record parameters only."""
    model = _mlp()
    with Collector(model, tmp_path / "run", every=1, gradients=False, activations=False) as wr:
        _train(model, wr, 2)
    assert set(load_run(tmp_path / "run").tables["stats"].kind) == {"param"}


def test_public_names_are_complete_and_sorted():
    """weightreport.__all__ lists every public name the package exports, sorted as ruff sorts it."""
    for name in weightreport.__all__:  # the exports are lazy: load each first
        getattr(weightreport, name)
    public = {n for n in vars(weightreport) if not n.startswith("_") and n != "annotations"}
    public -= {m for m in public if type(getattr(weightreport, m)).__name__ == "module"}
    assert set(weightreport.__all__) == public | {"__version__"}
    # ruff's RUF022 order (the project selects RUF): SCREAMING_CASE, then CamelCase, then the rest
    def isort_key(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert weightreport.__all__ == sorted(weightreport.__all__, key=isort_key)
    for name in weightreport.__all__:
        assert hasattr(weightreport, name)


def test_run_json_is_one_line_while_training_and_indented_once_closed(tmp_path):
    """A flush during training writes run.json on one line (json's fast encoder); close writes it indented."""
    import json

    model = nn.Linear(3, 2)
    wr = Collector(model, tmp_path / "run", every=1, flush_every=2)
    for _ in range(3):
        wr.step()
    during = (tmp_path / "run" / "run.json").read_text()
    assert "\n" not in during and json.loads(during)["status"] == "running"
    wr.close()
    after = (tmp_path / "run" / "run.json").read_text()
    assert after.count("\n") > 10 and json.loads(after)["status"] == "complete"
