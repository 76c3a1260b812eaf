"""The binary record batch: what serving writes the monitor reads back, and nothing else."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest

from driftward_serving.recordbatch import (
    ALIGN,
    RecordBatchError,
    build_record_batch,
    parse_record_batch,
)


def columns(rows: int = 3, width: int = 4, classes: int | None = 2) -> dict[str, Any]:
    """Columns as serving queues them: uuid-hex ids, one time, features, text classes."""
    rng = np.random.default_rng(rows * 100 + width)
    built: dict[str, Any] = {
        "id": np.array([f"{i:032x}" for i in range(rows)], dtype="S32"),
        "ts": np.full(rows, 1_700_000_000.25),
        "features": rng.normal(size=(rows, width)),
        "output": np.array(["setosa", "virginica", "x"] * rows)[:rows],
    }
    if classes is not None:
        built["proba"] = rng.dirichlet(np.ones(classes), size=rows)
    return built


def split(body: bytes) -> tuple[dict[str, Any], bytes]:
    """A body's header (parsed) and its column bytes."""
    _, size = struct.unpack_from("<4sI", body)
    return orjson.loads(body[8 : 8 + size]), body[8 + size :]


def rebuild(header: dict[str, Any], data: bytes) -> bytes:
    """A body from a (possibly edited) header and column bytes, keeping the alignment."""
    raw = orjson.dumps(header)
    raw += b" " * (-(8 + len(raw)) % ALIGN)
    return struct.pack("<4sI", b"DWRB", len(raw)) + raw + data


@pytest.mark.parametrize(("rows", "width", "classes"), [(1, 30, 2), (7, 3, None), (1000, 50, 5)])
def test_round_trip_keeps_every_value(rows: int, width: int, classes: int | None) -> None:
    sent = columns(rows, width, classes)
    labels = [{"id": "a", "ts": 2.0, "label": "setosa"}, {"id": "b", "ts": 3.0, "label": 1.5}]
    body = build_record_batch("iris", "v2", sent, labels)
    batch = parse_record_batch(body, max_rows=rows)
    assert (batch.model, batch.version, batch.rows) == ("iris", "v2", rows)
    assert batch.ids.tolist() == [f"{i:032x}".encode() for i in range(rows)]
    np.testing.assert_array_equal(batch.ts, sent["ts"])
    np.testing.assert_array_equal(batch.features, sent["features"])
    assert batch.outputs.tolist() == sent["output"].tolist()
    if classes is None:
        assert batch.proba is None
    else:
        np.testing.assert_array_equal(batch.proba, sent["proba"])
    assert batch.labels == labels
    assert batch.features.flags.aligned
    assert len(body) % ALIGN == 0


def test_labels_alone_need_no_columns() -> None:
    batch = parse_record_batch(build_record_batch("m", "v", {}, [{"id": "a", "label": 1}]), 10)
    assert batch.rows == 0
    assert batch.labels == [{"id": "a", "label": 1}]


def test_short_ids_are_nul_padded_and_come_back_whole() -> None:
    sent = columns(2, 1, None)
    sent["id"] = np.array(["ab", "c"], dtype="S2")
    assert parse_record_batch(build_record_batch("m", "v", sent), 2).ids.tolist() == [b"ab", b"c"]


def test_numeric_outputs_keep_their_type() -> None:
    sent = columns(3, 2, None)
    sent["output"] = np.array([0, 2, 1], dtype=np.int64)
    assert parse_record_batch(build_record_batch("m", "v", sent), 3).outputs.tolist() == [0, 2, 1]


def _edit_column(index: int, **changes: Any) -> bytes:
    header, data = split(build_record_batch("m", "v", columns()))
    header["columns"][index].update(changes)
    return rebuild(header, data)


def _edit_header(**changes: Any) -> bytes:
    header, data = split(build_record_batch("m", "v", columns()))
    header.update(changes)
    return rebuild(header, data)


BAD_BODIES = [
    ("short", lambda: b"DWR", "shorter than the 8-byte prefix"),
    ("magic", lambda: b"JSON" + build_record_batch("m", "v", columns())[4:], "starts with b'JSON'"),
    (
        "header past the body",
        lambda: struct.pack("<4sI", b"DWRB", 1 << 20) + b"{}",
        "runs past the",
    ),
    ("not json", lambda: rebuild({}, b"")[:8] + b"{nope    ", "header: not valid JSON"),
    ("header a list", lambda: rebuild([], b"")[:8] + b"[]" + b" " * 6, "expected a JSON object"),  # type: ignore[arg-type]
    ("format", lambda: _edit_header(format=2), "header.format: 2; this monitor reads format 1"),
    ("rows negative", lambda: _edit_header(rows=-1), "header.rows: -1; expected an integer"),
    ("rows too many", lambda: _edit_header(rows=99), "header.rows: 99; expected an integer"),
    ("model", lambda: _edit_header(model=5), "header.model: 5; expected a string"),
    ("labels", lambda: _edit_header(labels={"id": 1}), "header.labels: a dict; expected a list"),
    ("columns", lambda: _edit_header(columns="all"), "header.columns: 'all'; expected a list"),
    ("column name", lambda: _edit_column(1, name="when"), "header.columns[1].name: 'when'"),
    ("column twice", lambda: _edit_column(1, name="id"), "'id' appears twice"),
    (
        "object dtype",
        lambda: _edit_column(2, dtype="|O"),
        "header.columns[2].dtype: '|O' for column 'features'; allowed: <f8, <f4",
    ),
    ("big-endian", lambda: _edit_column(1, dtype=">f8"), "'>f8' for column 'ts'"),
    ("id width", lambda: _edit_column(0, dtype="|S999"), "'|S999' for column 'id'"),
    ("text feature", lambda: _edit_column(2, dtype="<U4"), "'<U4' for column 'features'"),
    (
        "shape rows",
        lambda: _edit_column(1, shape=[2]),
        "header.columns[1].shape: [2] for column 'ts'; expected [3]",
    ),
    ("shape rank", lambda: _edit_column(2, shape=[3]), "expected [3, width]"),
    ("shape bool", lambda: _edit_column(2, shape=[3, True]), "expected [3, width]"),
    ("past the body", lambda: _edit_column(2, shape=[3, 40]), "past the"),
    (
        "missing column",
        lambda: _edit_header(
            columns=[
                c
                for c in split(build_record_batch("m", "v", columns()))[0]["columns"]
                if c["name"] != "ts"
            ]
        ),
        "24 bytes after the last column",  # the ts bytes are still there
    ),
    (
        "trailing bytes",
        lambda: build_record_batch("m", "v", columns()) + b"\0" * 16,
        "16 bytes after",
    ),
]


@pytest.mark.parametrize(("case", "body", "message"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_every_malformed_body_is_refused_by_name(case: str, body: Any, message: str) -> None:
    with pytest.raises(RecordBatchError) as refused:
        parse_record_batch(body(), max_rows=10)
    assert message in str(refused.value), case


def test_a_required_column_missing_from_a_consistent_body_is_named() -> None:
    sent = columns()
    del sent["output"]
    with pytest.raises(RecordBatchError, match=r"\['output'\] missing"):
        parse_record_batch(build_record_batch("m", "v", sent), 10)


def test_ids_must_be_ascii_and_not_empty() -> None:
    sent = columns()
    sent["id"] = np.array([b"ok", "é".encode(), b"x"], dtype="S2")
    with pytest.raises(RecordBatchError, match="column 'id': row 1 is not ASCII"):
        parse_record_batch(build_record_batch("m", "v", sent), 10)
    sent["id"] = np.array([b"ok", b"", b"x"], dtype="S2")
    with pytest.raises(RecordBatchError, match="column 'id': row 1 is empty"):
        parse_record_batch(build_record_batch("m", "v", sent), 10)
