"""The sidecar profiles a dataset reference in a child process and gets back the same profile."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from driftward_serving.monitor.config import parse_monitor_config
from driftward_serving.monitor.profile import compute_profile_digest
from driftward_serving.monitor.sources import (
    ReferenceError,
    read_reference_profile,
    read_reference_profile_isolated,
)

from .data import config_doc


def _csv_config(tmp_path: Path, reference: dict[str, Any], sha256: str | None = None) -> Any:
    path = tmp_path / "ref.csv"
    columns = ("x", "z", "color", "y", "p0", "p1")
    pa_csv.write_csv(pa.table({k: reference[k] for k in columns}), path)
    digest = sha256 or hashlib.sha256(path.read_bytes()).hexdigest()
    doc = config_doc(
        reference={
            "uri": path.as_uri(),
            "sha256": digest,
            "format": "CSV",
            "targetColumn": "y",
            "probaColumns": ["p0", "p1"],
        }
    )
    return parse_monitor_config(doc)


def test_a_child_process_builds_the_same_profile(tmp_path: Path, reference: dict[str, Any]) -> None:
    config = _csv_config(tmp_path, reference)
    isolated = read_reference_profile_isolated(config)
    in_process = read_reference_profile(config)
    assert compute_profile_digest(isolated) == compute_profile_digest(in_process)
    assert isolated.classes == ("0", "1")
    assert isolated.calibration is not None


def test_the_child_process_errors_reach_the_caller_unchanged(
    tmp_path: Path, reference: dict[str, Any]
) -> None:
    config = _csv_config(tmp_path, reference, sha256="1" * 64)
    with pytest.raises(ReferenceError, match=r"but 1111.* is pinned; refusing to use it"):
        read_reference_profile_isolated(config)
