"""The monitor's only door to the outside: reading its config, fetching and checking the reference.

A reference is fetched (file://, http(s):// or s3://), its sha256 is checked
against the pin before a single byte is parsed, and then it is either read as
a profile (JSON) or profiled from a CSV/Parquet dataset. pyarrow (and boto3
for s3://) are imported here, lazily, only when a dataset is read: the
sidecar's import path must stay light. The sidecar itself profiles a dataset
in a short-lived child process (``read_reference_profile_isolated``), so that
pyarrow, the file's bytes and Arrow's memory pool (together two to three times
the dataset's size) are returned to the system instead of staying resident for
the life of the pod. Nothing here judges drift.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

from driftward_serving.monitor.config import (
    ConfigError,
    MonitorConfig,
    ReferenceConfig,
    ReferenceFormat,
    parse_monitor_config,
)
from driftward_serving.monitor.profile import (
    Column,
    FeatureSpec,
    FeatureType,
    Profile,
    ProfileError,
    Task,
    build_profile,
    profile_from_json,
    profile_to_json,
)

DEFAULT_MAX_REFERENCE_BYTES = 2 * 1024**3
FETCH_TIMEOUT_SECONDS = 60.0


class ReferenceError(RuntimeError):
    """The reference could not be fetched, did not match its digest, or could not be read."""


def read_monitor_config(path: Path) -> MonitorConfig:
    """Read and validate ``monitor.json``; ConfigError says what is wrong and where."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read the monitor config {path}: {error.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{path} is not JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    return parse_monitor_config(doc)


def fetch_bytes(uri: str, max_bytes: int = DEFAULT_MAX_REFERENCE_BYTES) -> bytes:
    """The bytes at a file://, http(s):// or s3:// URI, refusing more than ``max_bytes``."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        path = Path(urllib.parse.unquote(parsed.path))
        try:
            if path.stat().st_size > max_bytes:
                raise ReferenceError(f"{uri} is larger than the {max_bytes}-byte limit")
            return path.read_bytes()
        except OSError as error:
            raise ReferenceError(f"cannot read {uri}: {error.strerror}") from None
    if parsed.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri, timeout=FETCH_TIMEOUT_SECONDS) as response:
                data: bytes = response.read(max_bytes + 1)
        except OSError as error:
            raise ReferenceError(f"cannot fetch {uri}: {error}") from None
        if len(data) > max_bytes:
            raise ReferenceError(f"{uri} is larger than the {max_bytes}-byte limit")
        return data
    if parsed.scheme == "s3":
        import boto3  # noqa: PLC0415 -- only s3:// references pay for boto3

        try:
            body = boto3.client("s3").get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
            data = body["Body"].read(max_bytes + 1)
        except Exception as error:  # botocore raises many unrelated types
            raise ReferenceError(f"cannot fetch {uri}: {error}") from None
        if len(data) > max_bytes:
            raise ReferenceError(f"{uri} is larger than the {max_bytes}-byte limit")
        return bytes(data)
    raise ReferenceError(f"{uri} has an unsupported scheme; use file://, http(s):// or s3://")


def verify_sha256(data: bytes, expected: str, what: str) -> None:
    """Raise ReferenceError unless ``data`` hashes to ``expected``."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.lower():
        raise ReferenceError(
            f"{what} has sha256 {actual}, but {expected} is pinned; refusing to use it. "
            "Pin the new digest if the file changed on purpose."
        )


def _arrow_columns(table: Any, numeric: set[str]) -> dict[str, Column]:
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    columns: dict[str, Column] = {}
    for name in table.column_names:
        column = table.column(name)
        kind = column.type
        if name in numeric:
            if not (
                pa.types.is_integer(kind)
                or pa.types.is_floating(kind)
                or pa.types.is_boolean(kind)
                or pa.types.is_null(kind)
            ):
                sample = next((v for v in column.to_pylist() if v is not None), None)
                raise ReferenceError(
                    f"column {name!r} is declared numeric but holds {kind} values "
                    f"(for example {sample!r}); declare it categorical or fix the data"
                )
            columns[name] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        elif pa.types.is_floating(kind):
            columns[name] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        elif pa.types.is_integer(kind) and column.null_count == 0:
            columns[name] = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.int64)
        else:
            columns[name] = column.to_pylist()
    return columns


def read_dataset_columns(
    data: bytes, fmt: ReferenceFormat, columns: Sequence[str], numeric: Sequence[str] = ()
) -> dict[str, Column]:
    """Parse a CSV or Parquet file's bytes into the named columns (numeric ones as float64)."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.csv as pa_csv  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    wanted = list(dict.fromkeys(columns))
    try:
        if fmt is ReferenceFormat.PARQUET:
            table = pq.read_table(pa.BufferReader(data))
        else:
            table = pa_csv.read_csv(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as error:
        raise ReferenceError(f"cannot read the reference as {fmt.value}: {error}") from None
    absent = [c for c in wanted if c not in table.column_names]
    if absent:
        raise ReferenceError(
            f"the reference dataset has no column {absent[0]!r}; "
            f"it has: {', '.join(table.column_names)}"
        )
    return _arrow_columns(table.select(wanted), set(numeric))


def build_reference_profile(
    data: bytes,
    fmt: ReferenceFormat,
    features: Sequence[FeatureSpec],
    *,
    sha256: str,
    target: str | None = None,
    prediction: str | None = None,
    proba_columns: Sequence[str] = (),
    classes: Sequence[str] | None = None,
    task: Task | None = None,
    n_bins: int = 100,
) -> Profile:
    """Profile a verified dataset's bytes (CSV or Parquet)."""
    names = (
        [f.name for f in features] + [c for c in (target, prediction) if c] + list(proba_columns)
    )
    numeric = [f.name for f in features if f.type is FeatureType.NUMERIC] + list(proba_columns)
    columns = read_dataset_columns(data, fmt, names, numeric)
    try:
        return build_profile(
            columns,
            features,
            target=target,
            prediction=prediction,
            proba_columns=proba_columns,
            classes=classes,
            task=task,
            n_bins=n_bins,
            source_sha256=sha256,
        )
    except ValueError as error:
        raise ReferenceError(str(error)) from None


def parse_profile_bytes(data: bytes, what: str) -> Profile:
    """A profile from the JSON that ``profile build`` wrote."""
    try:
        doc: Mapping[str, Any] = json.loads(data)
        return profile_from_json(doc)
    except json.JSONDecodeError as error:
        raise ReferenceError(f"{what} is not JSON: {error.msg} at line {error.lineno}") from None
    except (ProfileError, TypeError, ValueError) as error:
        raise ReferenceError(f"{what} is not a usable profile: {error}") from None


def read_reference_profile(
    config: MonitorConfig, max_bytes: int = DEFAULT_MAX_REFERENCE_BYTES
) -> Profile:
    """Fetch the configured reference, verify its digest, and return its profile."""
    reference: ReferenceConfig = config.reference
    data = fetch_bytes(reference.uri, max_bytes)
    verify_sha256(data, reference.sha256, f"reference {reference.uri}")
    if reference.format is ReferenceFormat.PROFILE:
        return parse_profile_bytes(data, f"reference {reference.uri}")
    return build_reference_profile(
        data,
        reference.format,
        [FeatureSpec(f.name, f.type) for f in config.features],
        sha256=reference.sha256,
        target=reference.target_column,
        prediction=reference.prediction_column,
        proba_columns=reference.proba_columns,
        task=config.model.task,
    )


def _profile_document(config_doc: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    """Child-process side of ``read_reference_profile_isolated``: the profile as JSON."""
    config = parse_monitor_config(config_doc)
    return profile_to_json(read_reference_profile(config, max_bytes))


def read_reference_profile_isolated(
    config: MonitorConfig, max_bytes: int = DEFAULT_MAX_REFERENCE_BYTES
) -> Profile:
    """``read_reference_profile``, profiling a CSV/Parquet dataset in a child process.

    Only the finished profile (a few kilobytes per feature) comes back; the
    child's errors (ReferenceError, ConfigError) are raised here unchanged.
    """
    if config.reference.format is ReferenceFormat.PROFILE:
        return read_reference_profile(config, max_bytes)
    doc = config.to_json()
    # spawn, not fork: the parent may already run threads (an event loop, uvicorn).
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            result = pool.submit(_profile_document, doc, max_bytes).result()
    except BrokenProcessPool:
        raise ReferenceError(
            f"the process profiling reference {config.reference.uri} died (out of memory?); "
            "give the monitor more memory, or pin a prebuilt profile "
            "(driftward-serving profile build) with format Profile"
        ) from None
    return profile_from_json(result)
