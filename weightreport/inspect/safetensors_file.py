"""A ``.safetensors`` file read with numpy alone: no torch, no safetensors package.

The format is an 8-byte little-endian header length, a JSON header (tensor name →
``dtype``, ``shape``, ``data_offsets`` into the data that follows, and an optional
``__metadata__``), then the raw little-endian data. ``SafetensorsFile`` checks the
header against the file's size once (every tensor inside the data, its byte count
that of its shape and dtype), so that a truncated or damaged file is one clear
error rather than a read past its end. ``SafetensorsFile.reader`` maps the file with
``np.memmap`` for one group of reads and closes it afterwards, so that the pages a
group touched leave memory with it.

A tensor is read widened to a type numpy computes in (``read``): float32 and float64
as stored (float32 straight from the map, no copy), float16 by numpy's own cast,
bfloat16 by moving its 16 bits to the top of a float32 (``bf16 << 16``, exact),
float8 E5M2 as the top byte of a float16 and float8 E4M3 through a table of its
256 values (both exact).
"""

from __future__ import annotations

import contextlib
import json
import math
import mmap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from weightreport.errors import WeightReportError

FLOAT_CODES = {"F64": ("float64", 8), "F32": ("float32", 4), "F16": ("float16", 2),
               "BF16": ("bfloat16", 2), "F8_E4M3": ("float8_e4m3fn", 1), "F8_E5M2": ("float8_e5m2", 1)}
"""safetensors dtype code → (the dtype's torch name, bytes per element), for the floating types read."""
OTHER_CODES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "I32": 4, "U32": 4, "I64": 8, "U64": 8,
               "F8_E8M0": 1, "C64": 8}
"""The other codes whose size is known: their tensors are checked against the file, never read."""
MAX_HEADER = 100 * 2**20
"""The largest header accepted (safetensors' own limit)."""


@dataclass(frozen=True)
class StoredTensor:
    """One tensor's place in a safetensors file.

    Attributes:
        name: its key in the header.
        code: the safetensors dtype code (``F32``, ``BF16``, ...).
        shape: its dimensions.
        start, end: its bytes, as offsets into the data after the header.
    """

    name: str
    code: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def floating(self) -> bool:
        """Whether it is a floating-point tensor that ``read`` widens."""
        return self.code in FLOAT_CODES


class SafetensorsFile:
    """The header of a safetensors file, checked against the file's size.

    Args:
        path: the file.

    Attributes:
        tensors: every tensor, in the order of its data in the file.

    Raises:
        WeightReportError: the file is unreadable, truncated, or its header is not safetensors'.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            with self.path.open("rb") as fh:
                size = self.path.stat().st_size
                head = fh.read(8)
                if len(head) < 8:
                    self._fail(f"it holds {size} bytes, fewer than the 8 of a header length")
                n = int.from_bytes(head, "little")
                if n > MAX_HEADER:
                    self._fail(f"its header length reads {n} bytes (more than {MAX_HEADER})")
                if 8 + n > size:
                    self._truncated(f"its header needs {8 + n} bytes, the file holds {size}")
                raw = fh.read(n)
        except OSError as exc:
            msg = f"{self.path} is not readable ({type(exc).__name__}: {exc})"
            raise WeightReportError(msg) from None
        try:
            header = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._fail(f"its header is not JSON ({exc})")
        if not isinstance(header, dict):
            self._fail("its header is not a JSON object")
        self.offset = 8 + n
        self.data_size = size - self.offset
        self.tensors = sorted((self._entry(k, v) for k, v in header.items() if k != "__metadata__"),
                              key=lambda t: (t.start, t.end))
        end = max((t.end for t in self.tensors), default=0)
        if end > self.data_size:
            self._truncated(f"its header describes {end} bytes of tensor data, the file holds {self.data_size}")

    def _fail(self, why: str) -> NoReturn:
        msg = f"{self.path} is not a readable safetensors file: {why}"
        raise WeightReportError(msg)

    def _truncated(self, why: str) -> NoReturn:
        msg = f"{self.path} is truncated: {why}; download or save it again"
        raise WeightReportError(msg)

    def _entry(self, name: str, info: object) -> StoredTensor:
        if not isinstance(info, dict):
            self._fail(f"tensor {name!r} has no dtype, shape and data_offsets")
        code, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        valid = (isinstance(code, str) and isinstance(shape, list) and isinstance(offsets, list)
                 and len(offsets) == 2 and all(isinstance(d, int) and d >= 0 for d in [*shape, *offsets]))
        if not valid:
            self._fail(f"tensor {name!r} has no valid dtype, shape and data_offsets")
        start, end = offsets
        itemsize = FLOAT_CODES[code][1] if code in FLOAT_CODES else OTHER_CODES.get(code)
        numel = math.prod(shape)
        if end < start or (itemsize is not None and end - start != numel * itemsize):
            self._fail(f"tensor {name!r} ({code}, shape {shape}) spans bytes {start}..{end}, "
                       f"which do not hold {numel} values of its dtype")
        return StoredTensor(name, code, tuple(shape), start, end)

    @contextmanager
    def reader(self) -> Iterator[Callable[[StoredTensor], np.ndarray]]:
        """Map the file for a group of reads: yields ``read(tensor)``; the map closes on exit.

        The arrays ``read`` returns for float32 and float64 tensors view the map: use
        them inside the block (copy what must outlive it). One that is kept keeps the
        map open until it is dropped.
        """
        if self.data_size == 0:
            yield lambda t: widen(np.empty(0, np.uint8), t.code).reshape(t.shape)
            return
        try:
            with self.path.open("rb") as fh:
                mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            msg = f"{self.path} is not readable ({type(exc).__name__}: {exc})"
            raise WeightReportError(msg) from None
        if len(mapped) != self.offset + self.data_size:
            mapped.close()
            self._truncated(f"it changed size while it was read ({len(mapped)} bytes)")
        data = np.frombuffer(mapped, dtype=np.uint8, offset=self.offset)
        try:
            yield lambda t: widen(data[t.start : t.end], t.code).reshape(t.shape)
        finally:
            data = None  # the reader's own view: the map can close once the caller's arrays are gone
            with contextlib.suppress(BufferError):  # an array the caller kept views it; it closes with that
                mapped.close()


def _e4m3_table() -> np.ndarray:
    """The float32 value of each of the 256 float8 E4M3 (``fn``: finite, one NaN) codes."""
    codes = np.arange(256)
    exponent, mantissa = (codes >> 3) & 0xF, (codes & 7).astype(np.float64)
    values = np.where(exponent == 0, mantissa / 8 * 2.0**-6, (1 + mantissa / 8) * 2.0 ** (exponent - 7))
    values = np.where(codes & 0x80, -values, values)
    values[(codes & 0x7F) == 0x7F] = np.nan
    return values.astype(np.float32)


_E4M3 = _e4m3_table()


def widen(raw: np.ndarray, code: str) -> np.ndarray:
    """A flat float32 or float64 array of the little-endian values in ``raw`` (bytes), for a ``FLOAT_CODES`` code."""
    if code == "F32":
        return raw.view("<f4")
    if code == "F64":
        return raw.view("<f8")
    if code == "F16":
        return raw.view("<f2").astype(np.float32)
    if code == "BF16":
        wide = raw.view("<u2").astype(np.uint32)
        wide <<= 16
        return wide.view(np.float32)
    if code == "F8_E5M2":
        half = raw.astype(np.uint16)
        half <<= 8
        return half.view(np.float16).astype(np.float32)
    if code == "F8_E4M3":
        return _E4M3[raw]
    msg = f"no floating-point reader for safetensors dtype {code}"
    raise WeightReportError(msg)
