"""Shared pytest fixtures and the rule that cluster tests never skip.

The session fixture ``testbed`` starts the project's local Kubernetes control
plane (hack/testbed/cluster.sh) the first time a test asks for it and tears it
down at the end. If the cluster cannot start, every test that needs it fails
with the step that broke and how to retry: it is never skipped.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPT = ROOT / "hack" / "testbed" / "cluster.sh"
CLUSTER_DIRS = ("integration", "e2e")


@dataclass(frozen=True)
class Testbed:
    """A running local control plane: its name, kubeconfig and tool binaries."""

    __test__ = False  # a fixture value, not a test class

    name: str
    kubeconfig: Path
    bin_dir: Path

    def kubectl(self, *args: str, check: bool = True, input_text: str | None = None) -> str:
        """Run the pinned kubectl against this cluster and return its stdout."""
        proc = subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            input=input_text,
            timeout=120,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout


def _run_script(*args: str, step: str) -> str:
    proc = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-25:])
        pytest.fail(
            f"The local Kubernetes test cluster could not {step}.\n{tail}\n"
            f"Retry with: bash hack/testbed/cluster.sh {' '.join(args)}",
            pytrace=False,
        )
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """Start a fresh local cluster for this session (or reuse DRIFTWARD_KUBECONFIG)."""
    bin_dir = Path(_run_script("bin", step="build its binaries"))
    existing = os.environ.get("DRIFTWARD_KUBECONFIG")
    if existing:
        yield Testbed(name="external", kubeconfig=Path(existing), bin_dir=bin_dir)
        return
    name = f"driftward-test-{uuid.uuid4().hex[:6]}"
    kubeconfig = tmp_path_factory.mktemp("testbed") / "kubeconfig"
    _run_script("up", name, str(kubeconfig), step="start")
    try:
        yield Testbed(name=name, kubeconfig=kubeconfig, bin_dir=bin_dir)
    finally:
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "down", name], check=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration and tests/e2e as needing the cluster."""
    for item in items:
        if any(part in CLUSTER_DIRS for part in item.path.relative_to(ROOT / "tests").parts[:1]):
            item.add_marker(pytest.mark.cluster)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    """Turn a skipped cluster test into a failure: CI must never go green by skipping them."""
    report: pytest.TestReport = yield
    if report.skipped and item.get_closest_marker("cluster") is not None:
        report.outcome = "failed"
        report.longrepr = f"cluster test {item.nodeid} was skipped; cluster tests must run"
    return report
