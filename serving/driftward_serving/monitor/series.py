"""The mergeable window as Prometheus series, and back: the operator's Prometheus source.

The monitor exports its last evaluated ``WindowCounts`` as one gauge family,
``driftward_monitor_window_counts``, one series per non-zero cell:

- ``part`` names the field, as in the ``GET /v1/window`` document
  (``samples``, ``features``, ``classification.confusion`` ...);
- ``key`` is the feature name for ``part="features"``, else empty;
- ``index`` is the cell's flat index in the array (empty for scalars);
- ``shape`` is the array's shape, such as ``3x3`` (empty for scalars);
- ``profile_digest`` is the reference profile the bins follow.

Zero cells are left out (absent means zero), so a scrape costs series in
proportion to the bins actually used. ``window_document_from_series`` turns
the series of one pod, as a PromQL instant query returns them, back into the
exact ``GET /v1/window`` document, so both sources feed the same merge and the
same verdict code. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftward_serving.monitor.counts import (
    WINDOW_SCHEMA_VERSION,
    WindowCounts,
    window_counts_to_json,
)

METRIC_NAME = "driftward_monitor_window_counts"
SERIES_LABELS = ("profile_digest", "part", "key", "index", "shape")
_REQUIRED = ("profile_digest", "part")
_SCALARS = ("schemaVersion", "samples", "firstTs", "lastTs", "labelledInWindow")
_SECTIONS = ("classification", "regression", "estimated")


@dataclass(frozen=True)
class Series:
    """One exported cell: its labels (beyond model and version) and its value."""

    labels: Mapping[str, str]
    value: float


def _array_series(digest: str, part: str, key: str, values: Any) -> Iterator[Series]:
    array = np.asarray(values, dtype=np.float64)
    shape = "x".join(str(n) for n in array.shape)
    flat = array.reshape(-1)
    for index in np.flatnonzero(flat):
        labels = {"profile_digest": digest, "part": part, "key": key}
        yield Series({**labels, "index": str(int(index)), "shape": shape}, float(flat[index]))
    if not flat.any():
        # An all-zero array still says that it exists and how large it is.
        labels = {"profile_digest": digest, "part": part, "key": key}
        yield Series({**labels, "index": "", "shape": shape}, 0.0)


def _scalar(digest: str, part: str, value: float) -> Series:
    labels = {"profile_digest": digest, "part": part, "key": "", "index": "", "shape": ""}
    return Series(labels, float(value))


def window_counts_to_series(counts: WindowCounts) -> list[Series]:
    """Every non-zero cell of the window (plus its scalars) as a series."""
    doc = window_counts_to_json(counts)
    digest = counts.profile_digest
    out = [_scalar(digest, part, doc[part]) for part in _SCALARS if doc[part] is not None]
    for name, values in doc["features"].items():
        out.extend(_array_series(digest, "features", name, values))
    if doc["output"] is not None:
        out.extend(_array_series(digest, "output", "", doc["output"]))
    for section in _SECTIONS:
        body = doc[section]
        if body is None:
            continue
        for field, value in body.items():
            part = f"{section}.{field}"
            if isinstance(value, list):
                out.extend(_array_series(digest, part, "", value))
            else:
                out.append(_scalar(digest, part, value))
    return out


class SeriesError(ValueError):
    """The series do not make one window: a label is missing or a shape disagrees."""


def _shape(text: str, where: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(n) for n in text.split("x"))
    except ValueError:
        raise SeriesError(f"{where}: shape {text!r} is not like '3x3'") from None
    if any(n < 0 for n in shape):
        raise SeriesError(f"{where}: shape {text!r} has a negative size")
    return shape


def _fill(shape: tuple[int, ...], cells: Mapping[int, float], where: str) -> list[Any]:
    array = np.zeros(int(np.prod(shape)), dtype=np.float64)
    for index, value in cells.items():
        if not 0 <= index < array.size:
            raise SeriesError(f"{where}: index {index} is outside shape {shape}")
        array[index] = value
    result: list[Any] = array.reshape(shape).tolist()
    return result


_Arrays = dict[tuple[str, str], tuple[str, dict[int, float]]]


def _group(series: Iterable[Series]) -> tuple[set[str], dict[str, float], _Arrays]:
    """Sort series into profile digests, scalars by part, and array cells by (part, key)."""
    digests: set[str] = set()
    scalars: dict[str, float] = {}
    arrays: _Arrays = {}
    for item in series:
        # Prometheus drops labels whose value is empty: absent key, index and shape are "".
        labels = {name: item.labels.get(name, "") for name in SERIES_LABELS}
        missing = [name for name in _REQUIRED if not labels[name]]
        if missing:
            raise SeriesError(f"a {METRIC_NAME} series has no label {missing[0]!r}")
        digests.add(labels["profile_digest"])
        part, key = labels["part"], labels["key"]
        if not labels["shape"]:
            scalars[part] = item.value
            continue
        where = f"{part}{'.' + key if key else ''}"
        shape, cells = arrays.setdefault((part, key), (labels["shape"], {}))
        if labels["shape"] != shape:
            raise SeriesError(f"{where}: shapes {shape!r} and {labels['shape']!r} disagree")
        if labels["index"]:
            try:
                cells[int(labels["index"])] = item.value
            except ValueError:
                raise SeriesError(f"{where}: index {labels['index']!r} is not a number") from None
    return digests, scalars, arrays


def _place(doc: dict[str, Any], part: str, key: str, value: Any) -> None:
    """Put one field's value where the window document keeps it."""
    if part == "features":
        doc["features"][key] = value
    elif part == "output":
        doc["output"] = value
    elif part in _SCALARS:
        doc[part] = value
    else:
        section, _, field = part.partition(".")
        if section not in _SECTIONS or not field:
            raise SeriesError(f"unknown window part {part!r}")
        doc[section] = {**(doc[section] or {}), field: value}


def window_document_from_series(series: Iterable[Series]) -> dict[str, Any]:
    """The ``GET /v1/window`` document of one pod from its exported series.

    Raises SeriesError naming the label or field that is wrong; the caller
    reports that pod as unreadable, as it would a malformed window.
    """
    digests, scalars, arrays = _group(series)
    if len(digests) != 1:
        raise SeriesError(
            f"expected the series of one reference profile, got {len(digests)} profile digests"
        )
    doc: dict[str, Any] = {
        "schemaVersion": WINDOW_SCHEMA_VERSION,
        "profileDigest": digests.pop(),
        "samples": 0,
        "firstTs": None,
        "lastTs": None,
        "labelledInWindow": 0,
        "features": {},
        "output": None,
        **{section: None for section in _SECTIONS},
    }
    for (part, key), (shape_text, cells) in arrays.items():
        where = f"{part}{'.' + key if key else ''}"
        _place(doc, part, key, _fill(_shape(shape_text, where), cells, where))
    for part, value in scalars.items():
        _place(doc, part, "", value)
    for part in ("schemaVersion", "samples", "labelledInWindow"):
        doc[part] = int(doc[part])
    return doc
