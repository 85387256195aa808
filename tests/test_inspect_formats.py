"""Checkpoints as people have them: save_pretrained directories, shard indexes, Lightning, half types, bounded memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from weightreport import WeightReportError
from weightreport.cli import main
from weightreport.inspect.analyse import inspect_checkpoint
from weightreport.inspect.checkpoint import open_checkpoint
from weightreport.stats import SMALL

ROOT = Path(__file__).resolve().parent.parent


def _bert():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' own deprecation notices are not ours to fix
        return transformers.BertModel(config)


def _save_pretrained(model, directory, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(directory, **kwargs)
    return directory


def _by_name(result):
    return {t["tensor"]: t for t in result["tensors"]}


def _same_numbers(a, b):
    assert _by_name(a) == _by_name(b)
    assert a["total_params"] == b["total_params"]


def _write_bin_shards(state, directory, shards):
    """pytorch_model.bin shards and their index, laid out as Hugging Face writes them."""
    directory.mkdir(parents=True, exist_ok=True)
    names = list(state)
    weight_map = {}
    for i in range(shards):
        file = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
        part = {k: state[k].contiguous() for k in names[i::shards]}
        torch.save(part, directory / file)
        weight_map.update(dict.fromkeys(part, file))
    index = {"metadata": {"total_size": sum(t.nbytes for t in state.values())},
             "weight_map": dict(sorted(weight_map.items()))}
    (directory / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    return directory


def test_safetensors_shards_match_the_single_file(tmp_path):
    """A save_pretrained directory sharded small, and its index passed directly, give the single file's numbers."""
    model = _bert()
    single = _save_pretrained(model, tmp_path / "single")
    sharded = _save_pretrained(model, tmp_path / "tiny-bert", max_shard_size="100KB")
    assert len(list(sharded.glob("model-*.safetensors"))) >= 2 and (sharded / "model.safetensors.index.json").is_file()
    whole = inspect_checkpoint(single / "model.safetensors")
    from_dir = inspect_checkpoint(sharded)
    _same_numbers(whole, from_dir)
    _same_numbers(whole, inspect_checkpoint(sharded / "model.safetensors.index.json"))
    assert from_dir["checkpoint"] == "tiny-bert"
    assert inspect_checkpoint(sharded / "model.safetensors.index.json")["checkpoint"] == "tiny-bert"
    assert {t["dtype"] for t in from_dir["tensors"]} == {"float32"}


def test_bin_shards_match_the_single_file(tmp_path):
    """pytorch_model.bin shards with their index give the same numbers as one .bin of the model."""
    state = _bert().state_dict()
    (tmp_path / "one").mkdir()
    torch.save(state, tmp_path / "one" / "pytorch_model.bin")
    sharded = _write_bin_shards(state, tmp_path / "bert-bin", shards=3)
    whole = inspect_checkpoint(tmp_path / "one")
    _same_numbers(whole, inspect_checkpoint(sharded))
    _same_numbers(whole, inspect_checkpoint(sharded / "pytorch_model.bin.index.json"))
    floating = {k for k, v in state.items() if v.is_floating_point()}
    assert set(_by_name(whole)) == floating


def test_directory_prefers_safetensors_and_names_the_report_after_itself(tmp_path, monkeypatch):
    """With both formats saved, the safetensors are read, and the default report is named after the directory."""
    model = _bert()
    directory = _save_pretrained(model, tmp_path / "my-model")
    torch.save({k: torch.zeros_like(v) for k, v in model.state_dict().items()}, directory / "pytorch_model.bin")
    ck = open_checkpoint(directory)
    assert [s.path.name for s in ck.sources] == ["model.safetensors"]
    monkeypatch.chdir(tmp_path)
    assert main(["inspect", str(directory), "--json", "out.json"]) == 0
    assert (tmp_path / "reports" / "my-model.html").is_file()
    assert json.loads((tmp_path / "out.json").read_text())["checkpoint"] == "my-model"


def test_lightning_checkpoint(tmp_path):
    """A real Lightning Trainer checkpoint (optimizer states, hyper-parameters beside the weights) is read safely."""
    lightning = pytest.importorskip("lightning")

    class Module(lightning.LightningModule):
        def __init__(self, width: int = 8):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(width, 16), nn.ReLU(), nn.Linear(16, 4))

        def training_step(self, batch, _):
            return self.net(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters())

    torch.manual_seed(0)
    module = Module()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 8)), batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lightning's advice about workers and loggers
        trainer = lightning.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                    enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu",
                                    devices=1)
        trainer.fit(module, data)
        trainer.save_checkpoint(tmp_path / "last.ckpt")
    raw = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert {"state_dict", "optimizer_states", "hyper_parameters"} <= set(raw)
    result = inspect_checkpoint(tmp_path / "last.ckpt")
    state = module.state_dict()
    assert [t["tensor"] for t in result["tensors"]] == list(state)
    for t in result["tensors"]:
        assert t["mean"] == pytest.approx(state[t["tensor"]].double().mean().item(), abs=1e-12)
    assert inspect_checkpoint(tmp_path)["checkpoint"] == tmp_path.name  # the directory's one .ckpt


class HParams:
    """Stands for a class a training script pickled into a checkpoint's hyper-parameters."""

    def __init__(self):
        self.lr = 0.1


def test_lightning_checkpoint_with_a_pickled_class_is_refused_in_one_line(tmp_path, capsys):
    """A .ckpt whose hyper-parameters pickle a class is refused with one line that says why."""
    path = tmp_path / "epoch=1.ckpt"
    torch.save({"state_dict": {"w": torch.randn(3, 3)}, "hyper_parameters": HParams(),
                "pytorch-lightning_version": "2.6.6"}, path)
    with pytest.raises(WeightReportError, match=r"refused.*Lightning"):
        inspect_checkpoint(path)
    assert main(["inspect", str(path), "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert "Lightning" in err and "HParams" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_half_types_are_described_as_stored(tmp_path, dtype, fmt):
    """fp16 and bf16 tensors keep their dtype in the result and get the numbers of their float32 widening."""
    torch.manual_seed(0)
    state = {"big": (torch.randn(200, 120) * 3).to(dtype), "small": torch.randn(50).to(dtype),
             "f32": torch.randn(10, 10)}
    path = tmp_path / f"half.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    result = _by_name(inspect_checkpoint(path))
    assert result["big"]["dtype"] == result["small"]["dtype"] == str(dtype).removeprefix("torch.")
    assert result["f32"]["dtype"] == "float32"
    widened = tmp_path / f"widened.{fmt}"
    as_f32 = {k: v.float() for k, v in state.items()}
    if fmt == "safetensors":
        save_file(as_f32, str(widened))
    else:
        torch.save(as_f32, widened)
    reference = _by_name(inspect_checkpoint(widened))
    for name, row in result.items():
        assert {k: v for k, v in row.items() if k != "dtype"} == {
            k: v for k, v in reference[name].items() if k != "dtype"}
        x = state[name].float().numpy().astype(np.float64).ravel()
        assert row["min"] == x.min() and row["max"] == x.max()
        exact = x.size <= SMALL  # large tensors get the compiled path's float32-accurate moments
        assert row["mean"] == pytest.approx(x.mean(), rel=1e-12 if exact else 1e-5, abs=1e-15)
        assert row["counts"] == np.histogram(x, row["edges"])[0].tolist()


MEMORY_SCRIPT = textwrap.dedent("""
    import json, re, sys
    from pathlib import Path
    from weightreport.inspect.analyse import inspect_checkpoint
    from weightreport.inspect.checkpoint import load_state_dict

    def status(field):  # kB; VmHWM is this process's own peak (ru_maxrss can carry the parent's over exec)
        return int(re.search(field + r":\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) * 1024

    inspect_checkpoint(sys.argv[2])  # warm up: compiled kernels, lazy imports
    base = status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    result = inspect_checkpoint(sys.argv[1])
    streamed = status("VmHWM") - base
    tensors = load_state_dict(sys.argv[1])  # everything at once, as inspect used to
    whole = status("VmHWM") - base
    print(json.dumps({"streamed": streamed, "whole": whole, "n": len(result["tensors"])}))
""")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak RSS is read from Linux's /proc")
def test_memory_is_bounded_on_a_multi_shard_checkpoint(tmp_path):
    """Inspecting 8 shards of 40 MB grows peak RSS by well under a third of the checkpoint, unlike loading it whole."""
    from safetensors.torch import save_file

    directory = tmp_path / "big"
    directory.mkdir()
    shards, weight_map = 8, {}
    gen = torch.Generator().manual_seed(0)
    for s in range(shards):
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {f"layers.{s}.weight": torch.randn(10000, 250, generator=gen),  # 10 MB each
                **{f"layers.{s}.v{j}": torch.randn(2_500_000, generator=gen) for j in range(3)}}
        save_file(part, str(directory / file))
        weight_map.update(dict.fromkeys(part, file))
        del part
    total = shards * 4 * 2_500_000 * 4
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    tiny = tmp_path / "tiny.pt"
    torch.save({"w": torch.randn(300, 200), "v": torch.randn(20000)}, tiny)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # eigvalsh on oversubscribed cores is slow, not different
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(directory), str(tiny)], capture_output=True,
                         text=True, timeout=120, cwd=ROOT, check=True, env=env)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["n"] == shards * 4
    assert got["streamed"] < total / 3, got
    assert got["whole"] > total * 0.9, got  # the load-everything path would not fit the bound


def test_missing_shard_is_named_in_one_line(tmp_path, capsys):
    """An index that names a shard which is not there gives one line naming it, and exit 2."""
    directory = _save_pretrained(_bert(), tmp_path / "partial", max_shard_size="100KB")
    shards = sorted(directory.glob("model-*.safetensors"))
    shards[1].unlink()
    capsys.readouterr()  # transformers' own progress bar
    with pytest.raises(WeightReportError, match=f"names {shards[1].name}, which is not in .*incomplete"):
        open_checkpoint(directory)
    assert main(["inspect", str(directory / "model.safetensors.index.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert shards[1].name in err and len(err.splitlines()) == 1


def test_directory_without_weights_exits_2(tmp_path, capsys):
    """A directory with no weights gets one line saying what was looked for, and exit 2."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    assert main(["inspect", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "holds no model weights" in err and "model.safetensors.index.json" in err and "*.ckpt" in err
    assert not (tmp_path / "reports").exists()


def test_shard_names_outside_the_directory_are_refused(tmp_path):
    """An index may only name shard files beside it, never a path elsewhere."""
    (tmp_path / "m").mkdir()
    index = tmp_path / "m" / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": {"w": "../elsewhere.safetensors"}}))
    with pytest.raises(WeightReportError, match="not a file name beside it"):
        open_checkpoint(index)
