"""Render the Helm chart with the pinned helm binary: shared by the chart's unit and cluster tests.

helm is one of the testbed's pinned binaries (hack/testbed/versions.env),
built by hack/testbed/build.sh from the Go module proxy and cached; rendering
needs no cluster and no network once it is built.
"""

from __future__ import annotations

import copy
import functools
import json
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "driftward"
BUILD_SCRIPT = ROOT / "hack" / "testbed" / "build.sh"
VERSIONS = ROOT / "hack" / "testbed" / "versions.env"

Manifest = dict[str, Any]


def kube_version() -> str:
    """The Kubernetes version the testbed pins, which the chart is rendered for."""
    for line in VERSIONS.read_text().splitlines():
        if line.startswith("KUBERNETES_VERSION="):
            return line.split("=", 1)[1].strip().lstrip("v")
    raise AssertionError(f"KUBERNETES_VERSION is missing from {VERSIONS}")


def build_helm() -> Path:
    """The pinned helm binary, built on first use; fails (never skips) if it cannot be built."""
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "helm"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        pytest.fail(
            f"could not build the pinned helm binary:\n{tail}\nRetry: bash {BUILD_SCRIPT} helm",
            pytrace=False,
        )
    return Path(proc.stdout.strip().splitlines()[-1]) / "helm"


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run helm and return the finished process, whatever its exit code."""
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=300
    )


def write_values(values: Mapping[str, Any], directory: Path) -> Path:
    """Write a values file for helm's -f."""
    path = directory / "values.yaml"
    path.write_text(yaml.safe_dump(dict(values)))
    return path


def render(
    helm: Path,
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "driftward",
    namespace: str = "driftward-system",
) -> list[Manifest]:
    """`helm template` the chart with these values and return its objects."""
    key = json.dumps(values or {}, sort_keys=True)
    return copy.deepcopy(_render(helm, key, release, namespace))


@functools.lru_cache(maxsize=64)
def _render(helm: Path, values_json: str, release: str, namespace: str) -> list[Manifest]:
    # Many tests render the same values; helm costs a few hundred milliseconds a call.
    with tempfile.TemporaryDirectory() as tmp:
        values_file = write_values(json.loads(values_json), Path(tmp))
        proc = run_helm(
            helm,
            "template",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--kube-version",
            kube_version(),
            "-f",
            str(values_file),
        )
    if proc.returncode != 0:
        raise AssertionError(f"helm template failed: {proc.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def find(docs: Iterable[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    """The rendered objects of this kind (and name)."""
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def only(docs: Iterable[Manifest], kind: str) -> Manifest:
    """The single rendered object of this kind."""
    found = find(docs, kind)
    assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
    return found[0]
