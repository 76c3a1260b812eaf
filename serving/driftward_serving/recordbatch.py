"""The binary record batch: prediction records as columns, serving → monitor.

Serving hands the monitor every prediction it makes. As JSON, each record
costs serving a dict, a list of Python floats and their text, and costs the
monitor the same again to parse; at batch 1 that was a fifth of serving's
throughput (bench/serving). As columns, a batch of any size is a handful of
array copies on both sides. The layout (docs/contracts.md) is::

    b"DWRB" | uint32 little-endian header length H | H bytes of UTF-8 JSON header | columns

H makes the first column start at a multiple of 8 bytes (the JSON is padded
with spaces), and each column's bytes are followed by zero bytes up to the
next multiple of 8, so that every column can be read in place, aligned.

The header names the batch (``format``, ``model``, ``version``, ``rows``),
carries the labels as JSON records (they are few and of any type), and lists
the columns in the order their bytes follow, each ``{"name", "dtype",
"shape"}`` with a NumPy dtype string from a closed list: C order, nothing
after the last column's padding.

This module is pure (bytes in, arrays out). It must never build an object
dtype or read past the body, and it rejects anything outside the layout with a
``RecordBatchError`` that names the field, the value and what is allowed.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import orjson

MEDIA_TYPE: Final = "application/vnd.driftward.record-batch"
FORMAT_VERSION: Final = 1
MAGIC: Final = b"DWRB"
_PREFIX: Final = struct.Struct("<4sI")
MAX_ID_BYTES: Final = 512
MAX_CATEGORY_CHARS: Final = 512

ID: Final = "id"
TS: Final = "ts"
FEATURES: Final = "features"
OUTPUT: Final = "output"
PROBA: Final = "proba"

_FLOATS: Final = ("<f8", "<f4")
_NUMBERS: Final = ("<f8", "<f4", "<i8", "<i4", "<u8", "<u4", "|b1", "|u1", "|i1")
# Per column: the allowed dtypes (or a pattern for fixed-width text) and its rank.
_ID_DTYPE: Final = re.compile(r"\|S([0-9]{1,3})")
_TEXT_DTYPE: Final = re.compile(r"<U([0-9]{1,3})")
ALIGN: Final = 8
_TEXT_COLUMNS: Final = {ID: (_ID_DTYPE, MAX_ID_BYTES), OUTPUT: (_TEXT_DTYPE, MAX_CATEGORY_CHARS)}
_RANKS: Final = {ID: 1, TS: 1, FEATURES: 2, OUTPUT: 1, PROBA: 2}
_REQUIRED: Final = (ID, TS, FEATURES, OUTPUT)


class RecordBatchError(ValueError):
    """A body that does not follow the record-batch layout; the message names the field."""


@dataclass(frozen=True)
class RecordBatch:
    """A decoded batch: the header's identity and labels, and the prediction columns."""

    model: str
    version: str
    ids: np.ndarray[Any, np.dtype[np.bytes_]]  # ASCII, NUL padded; never an empty id
    ts: np.ndarray[Any, np.dtype[np.float64]]
    features: np.ndarray[Any, np.dtype[np.float64]]
    outputs: np.ndarray[Any, Any]
    proba: np.ndarray[Any, np.dtype[np.float64]] | None
    labels: list[Any]

    @property
    def rows(self) -> int:
        """How many predictions the batch holds."""
        return len(self.ids)


def build_record_batch(
    model: str,
    version: str,
    columns: Mapping[str, np.ndarray[Any, Any]],
    labels: Sequence[Mapping[str, Any]] = (),
) -> bytes:
    """Encode prediction columns (``id``, ``ts``, ``features``, ``output``, optional ``proba``)."""
    rows = len(columns[ID]) if ID in columns else 0
    described: list[dict[str, Any]] = []
    buffers: list[bytes | np.ndarray[Any, Any]] = []
    for name, array in columns.items():
        if array.dtype.hasobject:
            raise TypeError(
                f"column {name!r}: dtype {array.dtype} holds Python objects; "
                "a record batch carries numbers and fixed-width text"
            )
        wire = array.astype(array.dtype.newbyteorder("<"), copy=False)
        wire = np.ascontiguousarray(wire)
        described.append({"name": name, "dtype": wire.dtype.str, "shape": list(wire.shape)})
        buffers.append(wire)  # a C-contiguous array is a buffer: the join below copies it once
        buffers.append(bytes(_padding(wire.nbytes)))
    header = orjson.dumps(
        {
            "format": FORMAT_VERSION,
            "model": model,
            "version": version,
            "rows": rows,
            "columns": described,
            "labels": list(labels),
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    header += b" " * _padding(_PREFIX.size + len(header))
    return b"".join([_PREFIX.pack(MAGIC, len(header)), header, *buffers])  # type: ignore[list-item]


def _padding(size: int) -> int:
    return -size % ALIGN


def parse_record_batch(body: bytes, max_rows: int) -> RecordBatch:
    """Decode and check a record-batch body; arrays are read-only views of `body`."""
    if len(body) < _PREFIX.size:
        raise RecordBatchError(
            f"body: {len(body)} bytes is shorter than the {_PREFIX.size}-byte prefix"
        )
    magic, header_size = _PREFIX.unpack_from(body)
    if magic != MAGIC:
        raise RecordBatchError(f"body: starts with {magic!r}; a record batch starts with {MAGIC!r}")
    end = _PREFIX.size + header_size
    if end > len(body):
        raise RecordBatchError(
            f"header length: {header_size} bytes runs past the {len(body)}-byte body"
        )
    try:
        header = orjson.loads(body[_PREFIX.size : end])
    except orjson.JSONDecodeError as exc:
        raise RecordBatchError(f"header: not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise RecordBatchError(f"header: a {type(header).__name__}; expected a JSON object")
    if header.get("format") != FORMAT_VERSION:
        raise RecordBatchError(
            f"header.format: {header.get('format')!r}; this monitor reads format {FORMAT_VERSION}"
        )
    rows = header.get("rows")
    if not isinstance(rows, int) or isinstance(rows, bool) or not 0 <= rows <= max_rows:
        raise RecordBatchError(f"header.rows: {rows!r}; expected an integer from 0 to {max_rows}")
    model, version = header.get("model", ""), header.get("version", "")
    for field, value in (("model", model), ("version", version)):
        if not isinstance(value, str):
            raise RecordBatchError(f"header.{field}: {value!r}; expected a string")
    labels = header.get("labels", [])
    if not isinstance(labels, list):
        raise RecordBatchError(f"header.labels: a {type(labels).__name__}; expected a list")
    arrays = _read_columns(body, end, header.get("columns"), rows)
    if rows and any(name not in arrays for name in _REQUIRED):
        missing = [name for name in _REQUIRED if name not in arrays]
        raise RecordBatchError(f"header.columns: {missing} missing; a batch with rows needs them")
    features = arrays.get(FEATURES, np.empty((0, 0)))
    proba = arrays.get(PROBA)
    return RecordBatch(
        model=model,
        version=version,
        ids=_check_ids(arrays[ID]) if ID in arrays else np.empty(0, dtype="S1"),
        ts=arrays.get(TS, np.empty(0)).astype(np.float64, copy=False),
        features=features.astype(np.float64, copy=False),
        outputs=arrays.get(OUTPUT, np.empty(0)),
        proba=None if proba is None else proba.astype(np.float64, copy=False),
        labels=labels,
    )


def _read_columns(
    body: bytes, offset: int, described: object, rows: int
) -> dict[str, np.ndarray[Any, Any]]:
    if not isinstance(described, list):
        raise RecordBatchError(f"header.columns: {described!r}; expected a list of columns")
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for i, column in enumerate(described):
        where = f"header.columns[{i}]"
        if not isinstance(column, dict):
            raise RecordBatchError(f"{where}: {column!r}; expected an object")
        name = column.get("name")
        if name not in _RANKS:
            raise RecordBatchError(f"{where}.name: {name!r}; allowed: {sorted(_RANKS)}")
        if name in arrays:
            raise RecordBatchError(f"{where}.name: {name!r} appears twice")
        dtype = _column_dtype(f"{where}.dtype", name, column.get("dtype"))
        shape = _column_shape(f"{where}.shape", name, column.get("shape"), rows)
        size = dtype.itemsize * math.prod(shape)
        if offset % ALIGN:
            raise RecordBatchError(
                f"{where}: column {name!r} starts at byte {offset}, not a multiple of {ALIGN}; "
                "pad the header and each column"
            )
        if offset + size > len(body):
            raise RecordBatchError(
                f"{where}: column {name!r} needs {size} bytes at offset {offset}, "
                f"past the {len(body)}-byte body"
            )
        count = size // dtype.itemsize if dtype.itemsize else 0
        arrays[name] = np.frombuffer(body, dtype=dtype, count=count, offset=offset).reshape(shape)
        offset = min(offset + size + _padding(size), len(body))
    if offset != len(body):
        raise RecordBatchError(
            f"body: {len(body) - offset} bytes after the last column; the columns end at {offset}"
        )
    return arrays


def _column_dtype(where: str, name: str, value: object) -> np.dtype[Any]:
    if isinstance(value, str):
        pattern, longest = _TEXT_COLUMNS.get(name, (None, 0))
        match = pattern.fullmatch(value) if pattern is not None else None
        if match is not None and 1 <= int(match[1]) <= longest:
            return np.dtype(value)
        numbers = _FLOATS if name in (TS, FEATURES, PROBA) else _NUMBERS if name == OUTPUT else ()
        if value in numbers:
            return np.dtype(value)
    allowed = {
        ID: (f"|S1 ... |S{MAX_ID_BYTES} (ASCII, NUL-padded)",),
        OUTPUT: (*_NUMBERS, f"<U1 ... <U{MAX_CATEGORY_CHARS}"),
    }.get(name, _FLOATS)
    raise RecordBatchError(f"{where}: {value!r} for column {name!r}; allowed: {', '.join(allowed)}")


def _column_shape(where: str, name: str, value: object, rows: int) -> tuple[int, ...]:
    rank = _RANKS[name]
    if (
        not isinstance(value, list)
        or len(value) != rank
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value)
        or value[0] != rows
        or (rank == 2 and value[1] > 100_000)
    ):
        expected = f"[{rows}]" if rank == 1 else f"[{rows}, width] with width at most 100000"
        raise RecordBatchError(f"{where}: {value!r} for column {name!r}; expected {expected}")
    return tuple(value)


def _check_ids(column: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.bytes_]]:
    """The id column as it is, once every id is ASCII and not empty (whole-column checks;
    only a bad column is searched for the row to name)."""
    rows, width = len(column), column.dtype.itemsize
    octets = column.view(np.uint8).reshape(rows, width)
    if rows and octets.max() >= 0x80:
        row = int(np.argmax((octets >= 0x80).any(axis=1)))
        raise RecordBatchError(f"column 'id': row {row} is not ASCII; ids are ASCII text")
    blank = np.flatnonzero(octets[:, 0] == 0)
    if blank.size:
        empty = blank[~octets[blank].any(axis=1)]
        if empty.size:
            raise RecordBatchError(
                f"column 'id': row {int(empty[0])} is empty; every id needs a value"
            )
    return column
