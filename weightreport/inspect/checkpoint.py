"""Reading checkpoints safely and tensor by tensor: safetensors, or ``torch.load(weights_only=True)``.

A checkpoint never runs code: a ``.safetensors`` file is plain data, read with numpy
alone (``safetensors_file.py``; torch is not even imported), and pickles that name
anything beyond tensors and plain containers are refused by torch's weights-only
unpickler (torch is imported for ``.pt``, ``.pth``, ``.bin`` and ``.ckpt`` files
only), and that refusal becomes a ``WeightReportError``.

``open_checkpoint(path)`` resolves what people pass: a single file, a Hugging Face
``save_pretrained`` directory, a shard index (``*.index.json``), a Lightning ``.ckpt``.
It reads only headers up front; ``Checkpoint.groups`` then yields the tensors in
small groups, each read when asked for and dropped by the caller before the next.
Every group reopens its file (a map keeps every page it has touched resident until
it is closed), so memory stays near one group's size, never the checkpoint's. The
tensors come as numpy arrays of float32 or float64, whatever the format: half and
8-bit types widened to float32, exactly.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from weightreport.errors import WeightReportError
from weightreport.inspect.safetensors_file import FLOAT_CODES, SafetensorsFile

if TYPE_CHECKING:
    import torch

NESTED_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights")
"""Keys under which training scripts commonly nest the model's state dict."""

HF_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
            "pytorch_model.bin.index.json")
"""What ``save_pretrained`` writes, in the order a directory is searched (safetensors first)."""
GLOBS = ("*.safetensors", "*.ckpt", "*.pt", "*.pth", "*.bin")
"""A directory without the Hugging Face names may hold one checkpoint of these."""
GROUP_BYTES = 16 * 2**20
"""Tensors are read in groups of at most this many bytes (widened to float32), or one tensor."""


@dataclass(frozen=True)
class Entry:
    """One floating-point tensor of a checkpoint, before it is read.

    Attributes:
        name: the qualified name (a nested state dict's wrapper key removed).
        shape, dtype: as stored (``dtype`` as torch names it, e.g. ``bfloat16``).
        numel: elements.
        itemsize: bytes per element as stored.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    numel: int
    itemsize: int = 4

    @property
    def nbytes(self) -> int:
        """Bytes as stored."""
        return self.numel * self.itemsize

    @property
    def widened(self) -> int:
        """Bytes once widened for description (half and 8-bit types become float32)."""
        return self.numel * max(self.itemsize, 4)


@dataclass
class _Source:
    """One file of a checkpoint and the floating tensors it contributes, in file order."""

    path: Path
    entries: list[Entry]
    opener: Callable[[], object]  # a context manager yielding name -> float32 or float64 array
    _legacy: dict | None = field(default=None, repr=False)


@dataclass
class Checkpoint:
    """A resolved checkpoint: its display name, its files and their tensors.

    Attributes:
        path: what was passed.
        name: the name the report shows (the file's, or a directory's for a
            ``save_pretrained`` directory or an index file).
        stem: the default report file name (without ``.html``).
    """

    path: Path
    name: str
    stem: str
    sources: list[_Source]

    @property
    def entries(self) -> list[Entry]:
        """Every floating tensor, in order: shard by shard, file order within each."""
        return [e for s in self.sources for e in s.entries]

    def groups(self, budget: int = GROUP_BYTES) -> Iterator[list[tuple[Entry, np.ndarray]]]:
        """The tensors as float32 or float64 arrays of their shapes, group by group.

        A group holds at most ``budget`` widened bytes, or one tensor. The arrays may
        view the file's map, which closes after the group: the caller should drop them
        (or copy what it keeps) before asking for the next.
        """
        for source in self.sources:
            todo = list(source.entries)
            while todo:
                group, size = [], 0
                while todo and (not group or size + todo[0].widened <= budget):
                    size += todo[0].widened
                    group.append(todo.pop(0))
                with source.opener() as get:
                    yield [(e, get(e.name)) for e in group]


def open_checkpoint(path: str | Path) -> Checkpoint:
    """Resolve a checkpoint file, index or directory and read its tensors' headers.

    Raises:
        WeightReportError: the path is missing, incomplete, unreadable, unsafe or holds no tensors.
    """
    path = Path(path)
    if path.is_dir():
        files, index = _resolve_dir(path)
        name = stem = path.resolve().name or str(path)
    elif path.is_file():
        index = path if path.name.endswith(".index.json") else None
        files = _index_files(path) if index else [path]
        if index:
            name = stem = path.resolve().parent.name or path.stem
        else:
            name, stem = path.name, path.stem or "checkpoint"
    else:
        msg = (f"{path}: no such checkpoint file or directory; pass a .safetensors, .pt, .pth, .bin "
               "or .ckpt file, a shard index or a save_pretrained directory")
        raise WeightReportError(msg)
    sources = [_source(f) for f in files]
    if index is not None:
        _check_index(index, sources)
    seen: set[str] = set()
    for source in sources:
        for e in source.entries:
            if e.name in seen:
                msg = f"{source.path} repeats tensor {e.name!r} from another shard; the checkpoint is inconsistent"
                raise WeightReportError(msg)
            seen.add(e.name)
    if not seen:
        where = path if len(files) == 1 else f"{path} ({len(files)} files)"
        msg = f"{where} holds no floating-point tensors; is it a model checkpoint?"
        raise WeightReportError(msg)
    return Checkpoint(path=path, name=name, stem=stem, sources=sources)


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The floating-point tensors of a checkpoint, by qualified name, in file order (all in memory).

    Each is a numpy array of its shape, in float32 or float64 (half and 8-bit types widened).

    Args:
        path: anything ``open_checkpoint`` takes.

    Raises:
        WeightReportError: the checkpoint is missing, unreadable, unsafe or holds no tensors.
    """
    out = {}
    for group in open_checkpoint(path).groups():
        for entry, tensor in group:
            out[entry.name] = np.array(tensor)  # a copy, off the file's map, which closes after the group
    return out


# --- resolving what was passed --------------------------------------------------------------


def _resolve_dir(path: Path) -> tuple[list[Path], Path | None]:
    """The files of a directory's checkpoint, and its index if it has one."""
    for name in HF_FILES:
        candidate = path / name
        if candidate.is_file():
            if name.endswith(".index.json"):
                return _index_files(candidate), candidate
            return [candidate], None
    found = sorted({p for g in GLOBS for p in path.glob(g) if p.is_file()})
    if len(found) == 1:
        return found, None
    if found:
        names = ", ".join(p.name for p in found[:4]) + (", ..." if len(found) > 4 else "")
        msg = f"{path} holds several checkpoints ({names}) and no index; pass one of them"
        raise WeightReportError(msg)
    msg = (f"{path} holds no model weights (looked for {', '.join(HF_FILES)}, *.safetensors, *.ckpt, *.pt); "
           "pass a checkpoint file or a save_pretrained directory")
    raise WeightReportError(msg)


def _read_index(index: Path) -> dict[str, str]:
    """An index's ``weight_map`` (tensor → shard file name)."""
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{index} is not a readable shard index ({type(exc).__name__}: {exc})"
        raise WeightReportError(msg) from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        msg = f'{index} is not a shard index (no "weight_map" of tensor names to shard files)'
        raise WeightReportError(msg)
    return weight_map


def _index_files(index: Path) -> list[Path]:
    """The shard files an index names, sorted, each checked to be beside it."""
    shards = sorted(set(_read_index(index).values()))
    for shard in shards:
        if Path(shard).name != shard or shard in ("", ".", ".."):
            msg = f"{index} names shard {shard!r}, which is not a file name beside it; refusing to read it"
            raise WeightReportError(msg)
    missing = [s for s in shards if not (index.parent / s).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more shards)" if len(missing) > 1 else ""
        msg = (f"{index.name} names {missing[0]}{more}, which is not in {index.parent}; "
               "the checkpoint is incomplete")
        raise WeightReportError(msg)
    if not shards:
        msg = f"{index} names no shards; the checkpoint is empty"
        raise WeightReportError(msg)
    return [index.parent / s for s in shards]


def _check_index(index: Path, sources: list[_Source]) -> None:
    """Every floating tensor the index names is in the shard it names."""
    have = {(s.path.name, e.name) for s in sources for e in s.entries}
    floating = {e.name for s in sources for e in s.entries}
    for tensor, shard in _read_index(index).items():
        if (shard, tensor) not in have and tensor in floating:
            msg = f"{index.name} puts {tensor!r} in {shard}, but another shard holds it; the index is stale"
            raise WeightReportError(msg)


def _source(path: Path) -> _Source:
    if path.suffix == ".safetensors":
        return _safetensors_source(path)
    return _torch_source(path)


# --- safetensors ----------------------------------------------------------------------------


def _safetensors_source(path: Path) -> _Source:
    file = SafetensorsFile(path)
    stored = {t.name: t for t in file.tensors if t.floating}
    entries = [Entry(t.name, t.shape, FLOAT_CODES[t.code][0], _numel(t.shape), FLOAT_CODES[t.code][1])
               for t in stored.values()]

    @contextmanager
    def opener():
        with file.reader() as read:
            yield lambda name: read(stored[name])

    return _Source(path, entries, opener)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# --- torch.load ----------------------------------------------------------------------------


def _torch_source(path: Path) -> _Source:
    legacy = not zipfile.is_zipfile(path)  # mmap needs torch's zip format (torch >= 1.6)
    raw = _load_torch(path, mmap=not legacy)
    tensors = {k: v for k, v in _flatten(raw).items() if v.is_floating_point()}
    entries = [Entry(k, tuple(v.shape), str(v.dtype).removeprefix("torch."), v.numel(), v.element_size())
               for k, v in tensors.items()]
    kept = tensors if legacy else None
    del raw, tensors

    @contextmanager
    def opener():
        # A legacy file was read whole (it cannot be mapped); a zip file is mapped again
        # per group, so that the pages of the groups before are released.
        got = kept if kept is not None else _flatten(_load_torch(path, mmap=True))
        yield lambda name: _as_array(got[name])

    return _Source(path, entries, opener)


def _as_array(t: torch.Tensor) -> np.ndarray:
    """A tensor as a numpy array of its shape: float32 and float64 as they are, other floats widened to float32."""
    import torch

    t = t.detach()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    return t.numpy()


def _load_torch(path: Path, mmap: bool) -> object:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        blocked = [line.strip() for line in text.splitlines() if "GLOBAL" in line]
        if blocked:
            lightning = path.suffix == ".ckpt" or "lightning" in blocked[0]
            why = ("; a Lightning checkpoint pickles such objects in hyper_parameters, callbacks or "
                   "loops: save torch.load(..., weights_only=False)['state_dict'] from a trusted copy"
                   if lightning else "")
            msg = (f"{path} was refused: loading it would run code ({blocked[0][:160]}){why}; "
                   "re-save it as a plain state dict or .safetensors")
        else:
            msg = f"{path} is not a readable PyTorch checkpoint (the weights-only unpickler rejected it)"
        raise WeightReportError(msg) from None
    except Exception as exc:
        msg = f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})"
        raise WeightReportError(" ".join(msg.split())) from None


def _flatten(obj: object, prefix: str = "") -> dict[str, torch.Tensor]:
    """Tensors of a (possibly nested) checkpoint; a known wrapper key is unwrapped first."""
    import torch

    if isinstance(obj, Mapping):
        for key in NESTED_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
                return _flatten(inner, prefix)
        out: dict[str, torch.Tensor] = {}
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if isinstance(value, torch.Tensor):
                out[name] = value
            elif isinstance(value, Mapping):
                out.update(_flatten(value, name + "."))
        return out
    if isinstance(obj, torch.Tensor):
        return {prefix.rstrip(".") or "tensor": obj}
    return {}
