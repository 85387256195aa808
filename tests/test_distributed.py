"""Two CPU processes (gloo) describe split tensors exactly as one process describes the whole.

One ``torch.multiprocessing.spawn`` runs every scenario (plain splits, FSDP2, DDP) and
each rank pickles what it saw; the tests compare that with ``stats.describe`` and a
float64 numpy reference computed here, in one process.
"""

from __future__ import annotations

import gc
import math
import os
import pickle
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from collectives import count_collectives
from torch import nn

from weightreport.collect import distributed as wd
from weightreport.runfmt.schema import QUANTILES
from weightreport.stats import SMALL, describe
from weightreport.stats import split as split_stats
from weightreport.stats.fields import NAMES

WORLD = 2
COUNTED = ("numel", "count", "nan_count", "inf_count", "zeros", "outliers_3std",
           "outliers_6std", "outliers_iqr", "quantiles_exact", "min", "max")
MOMENTS = ("mean", "var", "std", "skew", "kurtosis", "norm")


def _tensors() -> dict[str, tuple[torch.Tensor, int]]:
    """Whole tensors and where rank 0's piece ends (rank 1 holds the rest)."""
    g = torch.Generator().manual_seed(0)
    with_bad = torch.randn(60_000, generator=g)
    with_bad[::97] = math.nan
    with_bad[5], with_bad[7] = math.inf, -math.inf
    t = np.random.default_rng(1).standard_t(2.0, 50_000)
    return {
        "normal": (torch.randn(100_000, generator=g), 37_001),
        "bn_gamma": (1 + 1e-4 * torch.randn(40_000, generator=g), 20_000),
        "nan_inf": (with_bad, 25_000),
        "constant": (torch.full((30_000,), 0.1), 11_111),
        "huge": (torch.randn(30_000, generator=g) * 1e30, 9_000),
        "float64_huge": (torch.randn(20_000, generator=g, dtype=torch.float64) * 1e100, 7_000),
        "heavy_tail": (torch.from_numpy(t).float(), 30_000),
        "bfloat16": (torch.randn(20_000, generator=g).bfloat16(), 10_000),
        "integers": (torch.randint(-3, 4, (40_000,), generator=g).float(), 1),
        "small": (torch.randn(SMALL, generator=g) * 3, 5_000),
        "empty_on_rank_1": (torch.randn(30_000, generator=g), 30_000),
        "empty_on_rank_0": (torch.randn(500, generator=g), 0),
        "all_nan": (torch.full((20_000,), math.nan), 10_000),
    }


def _index(name: str) -> int:
    """Position of a named tensor in ``_tensors()``."""
    return list(_tensors()).index(name)


def _split_scenario(rank: int) -> dict:
    tensors = _tensors()
    pieces = [t[:cut] if rank == 0 else t[cut:] for t, cut in tensors.values()]
    replica = torch.randn(5_000) if rank == 0 else torch.full((7,), 1e9)  # rank 1's must not count
    group = dist.new_group(list(range(WORLD)))
    flags = [True] * len(pieces) + [False]
    split, calls = count_collectives(
        lambda: wd.describe_distributed([*pieces, replica], flags, 64, group))
    only_replicas, calls_replicas = count_collectives(
        lambda: wd.describe_distributed([replica], [False]))
    return {"split": split, "calls": calls, "replica": replica, "only_replicas": only_replicas,
            "calls_replicas": calls_replicas, **_snapshots_scenario(pieces, group),
            **_unnested_scenario(pieces, group), **_hsdp_scenario(rank)}


def _snapshots_scenario(pieces, group) -> dict:
    """Three exchanges (as three snapshots make) and a finish: one collective each."""
    stats = split_stats.SplitStats(64, group)
    done, calls = [], []
    for k in range(3):
        scaled = [p * (k + 1) for p in pieces]
        (result, summed, maxed), c = count_collectives(
            lambda scaled=scaled, k=k: stats.exchange(
                scaled, [True] * len(scaled), [torch.tensor([1.0, k])], [torch.tensor([float(k)])],
                context=f"snapshot {k}"))
        done.append(result)
        calls.append(c)
    last, c = count_collectives(stats.finish)
    return {"rounds_done": [*done, last], "rounds_calls": [*calls, c],
            "rounds_reduced": (summed, maxed), "finish_again": stats.finish()}


def _unnested_scenario(pieces, group) -> dict:
    """Where a piece's grid would not nest in the global one, one more all_reduce bins them."""
    original = split_stats._nest
    split_stats._nest = lambda placed, grid: None
    try:
        out, calls = count_collectives(lambda: wd.describe_distributed(pieces, [True] * len(pieces),
                                                                       64, group))
    finally:
        split_stats._nest = original
    return {"unnested": out, "unnested_calls": calls}


def _hsdp_scenario(rank: int) -> dict:
    """A DTensor replicated on one mesh dimension and sharded on the other: one copy counts."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (WORLD, 1))
    whole = torch.arange(40_000, dtype=torch.float32).reshape(200, 200) / 1000
    t = distribute_tensor(whole, mesh, [Replicate(), Shard(0)])
    piece, sharded = wd.local_piece(t)
    return {"hsdp_piece": (piece.numel(), sharded), "hsdp_whole": whole,
            "hsdp": wd.describe_distributed([piece], [sharded])}


def _fsdp_scenario(rank: int) -> dict:
    from torch.distributed.fsdp import fully_shard

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(128, 300), nn.ReLU(), nn.Linear(300, 1))
    fully_shard(model[0])
    fully_shard(model)
    model(torch.randn(8, 128, generator=torch.Generator().manual_seed(rank))).sum().backward()
    tensors = [p for p in model.parameters()] + [p.grad for p in model.parameters()]
    pieces, sharded = zip(*(wd.local_piece(t) for t in tensors), strict=True)
    out = wd.describe_distributed(pieces, sharded)
    whole = [t.full_tensor() for t in tensors]
    return {"descriptions": out, "whole": whole, "sharded": sharded,
            "piece_sizes": [p.numel() for p in pieces]}


def _ddp_scenario(rank: int) -> dict:
    torch.manual_seed(0)
    inner = nn.Sequential(nn.Linear(16, 2000), nn.ReLU(), nn.Linear(2000, 4))
    model = nn.parallel.DistributedDataParallel(inner)
    batch = torch.randn(2 * WORLD, 16, generator=torch.Generator().manual_seed(1))
    local = batch.chunk(WORLD)[rank]
    seen = {}
    handle = inner[1].register_forward_hook(lambda m, i, o: seen.__setitem__("act", o.detach()))
    model(local).sum().backward()
    handle.remove()
    params = list(inner.parameters())
    pieces, sharded = zip(*(wd.local_piece(p) for p in params), strict=True)
    act = seen["act"]
    out = wd.describe_distributed([*pieces, act], [*sharded, True])  # the batch is split
    amax, amin = act.amax(dim=0), act.amin(dim=0)
    dead = (amax <= 0).to(torch.int32)
    maxed, mined, summed = (wd.reduce_max([amax, dead]), wd.reduce_min([amin]),
                            wd.reduce_sum([dead, torch.tensor(float(act.shape[0]))]))
    everyone = [torch.empty_like(act) for _ in range(WORLD)]
    dist.all_gather(everyone, act)  # the global batch's activation, as the ranks computed it
    whole_act = torch.cat(everyone)
    return {"descriptions": out, "params": [p.detach().clone() for p in params],
            "sharded": sharded, "whole_act": whole_act, "maxed": maxed, "mined": mined,
            "summed": summed}


def _worker(rank: int, port: int, folder: str) -> None:
    """Each rank runs every scenario and pickles its results."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    try:
        results = {"split": _split_scenario(rank), "fsdp": _fsdp_scenario(rank),
                   "ddp": _ddp_scenario(rank), "is_distributed": wd.is_distributed()}
        gc.collect()  # DDP's reducer must go before its process group, or gloo aborts
        dist.barrier()
    finally:
        dist.destroy_process_group()
    with open(os.path.join(folder, f"rank{rank}.pkl"), "wb") as f:
        pickle.dump(results, f)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """What each of the two gloo ranks returned, from one spawn."""
    folder = tmp_path_factory.mktemp("distributed")
    with socket.socket() as s:  # a free port on the loopback interface only
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, str(folder)), nprocs=WORLD)
    out = []
    for r in range(WORLD):
        with open(folder / f"rank{r}.pkl", "rb") as f:
            out.append(pickle.load(f))
    return out


def _reference(t: torch.Tensor) -> dict:
    """Moments of the finite values in float64 (two passes, scaled by a power of two)."""
    x = t.detach().double().reshape(-1).numpy()
    x = x[np.isfinite(x)]
    if not x.size:
        return dict.fromkeys(MOMENTS, math.nan)
    scale = math.ldexp(1.0, math.frexp(float(np.abs(x).max()))[1]) if x.any() else 1.0
    y = x / scale
    d = y - y.mean()
    m2, m3, m4 = (float(np.mean(d**k)) for k in (2, 3, 4))
    shape = (m3 / m2**1.5, m4 / m2**2 - 3) if m2 > 0 else (math.nan, math.nan)
    return {"mean": y.mean() * scale, "var": m2 * scale * scale, "std": math.sqrt(m2) * scale,
            "skew": shape[0], "kurtosis": shape[1], "norm": float(np.linalg.norm(y)) * scale}


def _assert_same(got, want, whole: torch.Tensor, name: str, tight: bool = True) -> None:
    """Counts, edges and range exactly as ``want``; moments as the float64 reference.

    ``tight=False`` is for what ``stats.describe`` itself computed (replicated
    tensors), whose float32 sums of large tensors are good to about 1e-5.
    """
    assert set(got.stats) == set(want.stats), name
    assert tuple(got.stats) == NAMES, name  # the split path fills the summary fields in order
    assert got.edges == want.edges, name
    assert got.counts == want.counts, name
    for key in COUNTED:
        a, b = got.stats[key], want.stats[key]
        assert a == b or (math.isnan(a) and math.isnan(b)), (name, key, a, b)
    ref = _reference(whole)
    for key in MOMENTS:
        a, b = got.stats[key], ref[key]
        rel, near = (1e-9, 1e-12) if tight else (1e-5, 1e-3)
        assert math.isclose(a, b, rel_tol=rel, abs_tol=near * abs(ref["std"])) or (
            math.isnan(a) and math.isnan(b)), (name, key, a, b)
        c = want.stats[key]  # stats.describe accumulates large float32 tensors in float32
        assert math.isclose(a, c, rel_tol=1e-5, abs_tol=1e-3) or (math.isnan(a) and math.isnan(c))
    width = got.edges[1] - got.edges[0]
    for q in QUANTILES:
        a, b = got.stats[f"p{q}"], want.stats[f"p{q}"]
        assert abs(a - b) <= 1e-9 * width or (math.isnan(a) and math.isnan(b)), (name, q, a, b)


def test_split_tensors_match_one_process(ranks):
    """Each split tensor (NaN/Inf, constant, huge, bfloat16, small, empty piece) matches."""
    tensors = _tensors()
    got = ranks[0]["split"]["split"]
    want, _ = describe([t for t, _ in tensors.values()], 64)
    for name, g, w in zip(tensors, got[:-1], want, strict=True):  # the last is a replica
        _assert_same(g, w, tensors[name][0], name)
    assert got[_index("small")].stats["quantiles_exact"]
    assert not got[_index("normal")].stats["quantiles_exact"]


def test_replicated_tensor_counts_rank_zero_only(ranks):
    """A tensor marked not sharded is rank 0's piece alone, described exactly as stats.describe."""
    split = ranks[0]["split"]
    replica = split["replica"]
    assert split["split"][-1] == describe([replica])[0][0]
    assert split["only_replicas"] == describe([replica])[0]


def test_results_on_rank_zero_only(ranks):
    """Rank 0 gets the descriptions; the other rank gets None and knows it is distributed."""
    assert ranks[1]["split"]["split"] is None
    assert ranks[1]["fsdp"]["descriptions"] is None
    assert all(r["is_distributed"] for r in ranks)


def test_collectives_are_few_and_batched(ranks):
    """Thirteen split tensors cost one exchange and its finish; replicated ones alone cost none."""
    split = ranks[0]["split"]
    assert split["calls"] == ["all_gather", "all_gather"]
    assert split["calls_replicas"] == []
    assert ranks[1]["split"]["calls"] == split["calls"]


def test_one_collective_per_exchange(ranks):
    """Each exchange returns the one before it, complete, for one all_gather; finish the last."""
    split = ranks[0]["split"]
    assert split["rounds_calls"] == [["all_gather"]] * 4
    assert ranks[1]["split"]["rounds_calls"] == split["rounds_calls"]
    done = split["rounds_done"]
    assert done[0] is None
    tensors = _tensors()
    for k in range(3):
        context, got = done[k + 1]
        assert context == f"snapshot {k}"
        wholes = [t * (k + 1) for t, _ in tensors.values()]
        want, _ = describe(wholes, 64)
        for name, g, w, whole in zip(tensors, got, want, wholes, strict=True):
            _assert_same(g, w, whole, f"{name} at {k}")
    assert ranks[1]["split"]["rounds_done"][1] == ("snapshot 0", None)
    summed, maxed = split["rounds_reduced"]  # the last exchange's, on every rank
    assert summed[0].tolist() == [2.0, 4.0] and maxed[0].tolist() == [2.0]
    assert split["finish_again"] is None


def test_pieces_binned_on_the_global_grid_where_grids_do_not_nest(ranks):
    split = ranks[0]["split"]
    assert split["unnested_calls"] == ["all_gather", "all_reduce", "all_gather"]
    tensors = _tensors()
    want, _ = describe([t for t, _ in tensors.values()], 64)
    for name, g, w in zip(tensors, split["unnested"], want, strict=True):
        _assert_same(g, w, tensors[name][0], name)


def test_hsdp_replica_ranks_contribute_nothing(ranks):
    """Under HSDP only the ranks at coordinate 0 of the replicated dimension count."""
    assert ranks[0]["split"]["hsdp_piece"] == (40_000, True)
    assert ranks[1]["split"]["hsdp_piece"] == (0, True)
    whole = ranks[0]["split"]["hsdp_whole"]
    _assert_same(ranks[0]["split"]["hsdp"][0], describe([whole])[0][0], whole, "hsdp")


def test_fsdp2_parameters_and_gradients_match_full_tensors(ranks):
    """FSDP2 DTensor shards (one of them empty on rank 1) reproduce the full tensors' stats."""
    fsdp = ranks[0]["fsdp"]
    assert all(fsdp["sharded"])
    assert 0 in ranks[1]["fsdp"]["piece_sizes"]  # Linear(300, 1) has one row for two ranks
    want, _ = describe(fsdp["whole"])
    assert fsdp["whole"][0].numel() > SMALL  # the large path is exercised
    for i, (g, w) in enumerate(zip(fsdp["descriptions"], want, strict=True)):
        _assert_same(g, w, fsdp["whole"][i], f"fsdp[{i}]")


def test_ddp_replicas_once_and_activations_over_global_batch(ranks):
    """DDP parameters count once, and split activations describe the global batch."""
    ddp = ranks[0]["ddp"]
    assert not any(ddp["sharded"])
    got = ddp["descriptions"]
    want, _ = describe([*ddp["params"], ddp["whole_act"]])
    for i, (g, w) in enumerate(zip(got[:-1], want[:-1], strict=True)):
        _assert_same(g, w, ddp["params"][i], f"param[{i}]", tight=False)  # rank 0's, once
        assert g.stats["count"] == ddp["params"][i].numel()
    _assert_same(got[-1], want[-1], ddp["whole_act"], "activation")
    assert got[-1].stats["count"] == ddp["whole_act"].numel()


def test_per_channel_reductions(ranks):
    """reduce_max/min/sum give the global per-channel amax, amin and sums, in the inputs' dtypes."""
    ddp = ranks[0]["ddp"]
    act = ddp["whole_act"]
    amax, dead_anywhere = ddp["maxed"]
    assert torch.equal(amax, act.amax(dim=0))
    assert torch.equal(ddp["mined"][0], act.amin(dim=0))
    assert dead_anywhere.dtype == torch.int32
    dead_count, rows = ddp["summed"]
    assert dead_count.dtype == torch.int32 and float(rows) == act.shape[0]
    other = ranks[1]["ddp"]["maxed"]
    assert all(torch.equal(a, b) for a, b in zip(ddp["maxed"], other, strict=True))


def test_single_process_falls_back_to_describe():
    """Without a process group, describe_distributed is stats.describe; local_piece is identity."""
    t = torch.randn(20_000)
    assert not wd.is_distributed()
    assert wd.describe_distributed([t], [True]) == describe([t])[0]
    piece, sharded = wd.local_piece(t)
    assert piece is t and not sharded
    with pytest.raises(ValueError, match="one flag per piece"):
        wd.describe_distributed([t], [])


def test_pairwise_merge_equals_whole():
    """Merging two parts' central sums gives the whole's, also with an empty part."""
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 0.01, 1000)

    def sums(v):
        d = v - v.mean() if v.size else v
        return (float(v.size), float(v.mean()) if v.size else 0.0,
                *(float(np.sum(d**k)) for k in (2, 3, 4)))

    for cut in (0, 1, 400, 1000):
        merged = split_stats.combine(*sums(x[:cut]), *sums(x[cut:]))
        np.testing.assert_allclose(merged, sums(x), rtol=1e-9, atol=1e-18)
