"""The torch-free safetensors reader: the same values as safetensors' own loader, shards, and damaged files."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from weightreport import WeightReportError
from weightreport.cli import main
from weightreport.inspect.checkpoint import load_state_dict, open_checkpoint
from weightreport.inspect.safetensors_file import SafetensorsFile, widen

save_file = pytest.importorskip("safetensors.torch").save_file
load_file = pytest.importorskip("safetensors.torch").load_file
ROOT = Path(__file__).resolve().parent.parent


def _state() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(40, 30, generator=gen) * 5
    base[0, :4] = torch.tensor([0.0, -0.0, 1e-6, 6e4])  # a zero of each sign, a half subnormal, near half's max
    return {"f32": base.clone(), "f64": base.double() / 3, "f16": base.half(), "bf16": base.bfloat16(),
            "e4m3": base.clamp(-448, 448).to(torch.float8_e4m3fn), "e5m2": base.to(torch.float8_e5m2),
            "scalar": torch.tensor(2.5), "ids": torch.arange(6), "mask": torch.ones(3, dtype=torch.bool)}


def test_reader_matches_safetensors_loader_for_every_floating_dtype(tmp_path):
    """fp32, fp64, fp16, bf16 and both float8 types read as the safetensors loader's tensors widened by torch, bit for bit."""
    state = _state()
    path = tmp_path / "m.safetensors"
    save_file(state, str(path))
    reference = load_file(str(path))
    loaded = load_state_dict(path)
    assert set(loaded) == {k for k, v in state.items() if v.is_floating_point()}
    for name, got in loaded.items():
        want = reference[name]
        want = want.numpy() if want.dtype in (torch.float32, torch.float64) else want.float().numpy()
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert np.array_equal(got.reshape(-1).view(np.uint8), want.reshape(-1).view(np.uint8)), name  # -0.0 and NaN bits too
    dtypes = {e.name: (e.dtype, e.itemsize) for e in open_checkpoint(path).entries}
    assert dtypes["bf16"] == ("bfloat16", 2) and dtypes["e4m3"] == ("float8_e4m3fn", 1)


def test_every_float8_code_decodes_as_torch_does():
    """All 256 codes of E4M3 and E5M2 (NaN, infinities, subnormals) widen to torch's float32 values."""
    codes = torch.arange(256, dtype=torch.uint8)
    for dtype, code in ((torch.float8_e4m3fn, "F8_E4M3"), (torch.float8_e5m2, "F8_E5M2")):
        want = codes.view(dtype).float().numpy()
        got = widen(codes.numpy(), code)
        assert np.array_equal(got, want, equal_nan=True), code


def test_sharded_directory_reads_each_shard_as_the_loader_does(tmp_path):
    """A save_pretrained directory in several bf16 shards gives every tensor of every shard, as safetensors loads it."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.BertModel(config).to(torch.bfloat16)
        model.save_pretrained(tmp_path / "bert", max_shard_size="50KB")
    shards = sorted((tmp_path / "bert").glob("model-*.safetensors"))
    assert len(shards) >= 2
    reference = {k: v.float().numpy() for s in shards for k, v in load_file(str(s)).items()}
    loaded = load_state_dict(tmp_path / "bert")
    assert set(loaded) == set(reference)
    for name, got in loaded.items():
        assert np.array_equal(got, reference[name]), name


def test_truncated_file_is_one_line_and_exit_2(tmp_path, capsys):
    """A safetensors file cut short is refused before any read, with one line saying it is truncated."""
    path = tmp_path / "cut.safetensors"
    save_file({"w": torch.randn(64, 64), "b": torch.randn(64)}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(WeightReportError, match=r"is truncated: its header describes \d+ bytes"):
        SafetensorsFile(path)
    assert main(["inspect", str(path), "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert "truncated" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.html").exists()
    path.write_bytes(data[:20])  # inside the header
    with pytest.raises(WeightReportError, match="is truncated: its header needs"):
        SafetensorsFile(path)


@pytest.mark.parametrize(("mangle", "why"), [
    (lambda h: b"{not json" + h[9:], "not JSON"),
    (lambda h: json.dumps([1, 2]).encode(), "not a JSON object"),
    (lambda h: json.dumps({"w": {"dtype": "F32", "shape": [64, 64], "data_offsets": [0, 10]}}).encode(),
     "do not hold 4096 values"),
])
def test_damaged_header_is_refused(tmp_path, mangle, why):
    """A header that is not JSON, not an object, or whose offsets do not fit the shape is one clear error."""
    path = tmp_path / "bad.safetensors"
    save_file({"w": torch.randn(64, 64)}, str(path))
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = mangle(data[8 : 8 + n])
    path.write_bytes(len(header).to_bytes(8, "little") + header + data[8 + n :])
    with pytest.raises(WeightReportError, match=why):
        SafetensorsFile(path)


def test_inspecting_safetensors_loads_no_torch_numba_altair_or_pandas(tmp_path):
    """``weightreport inspect`` of a .safetensors file writes its page importing neither torch, numba, Altair nor pandas."""
    path = tmp_path / "m.safetensors"
    save_file({"a.weight": torch.randn(80, 60), "a.bias": torch.randn(80)}, str(path))
    code = ("import contextlib, io, sys\nfrom weightreport.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main(['inspect', {str(path)!r}, '-o', {str(tmp_path / 'p.html')!r}]) == 0\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = set(out.stdout.split())
    assert (tmp_path / "p.html").is_file()
    heavy = {"torch", "numba", "safetensors", "altair", "pandas"}
    assert not loaded & heavy, loaded & heavy
