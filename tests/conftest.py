"""Shared pytest fixtures and the rule that cluster tests never skip.

The session fixture ``testbed`` starts the project's local Kubernetes control
plane (hack/testbed/cluster.sh) the first time a test asks for it and tears it
down at the end. If the cluster cannot start, every test that needs it fails
with the step that broke and how to retry: it is never skipped.

The session fixture ``e2e_cluster`` starts a second cluster, in podrunner mode,
with hack/podrunner running every pod's containers as local processes bound to
the pod's loopback IP: for tests where traffic must really reach the pods.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

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


def _run_script(*args: str, step: str, env: Mapping[str, str] | None = None) -> str:
    proc = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
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


@dataclass(frozen=True)
class PodrunnerTestbed(Testbed):
    """A cluster in podrunner mode: pods get 127.x IPs and their containers really run."""

    __test__ = False

    log_dir: Path
    """Container logs: LOG_DIR/<namespace>/<pod>/<container>.log."""
    runner_log: Path
    """The podrunner's own log."""

    def container_log(self, namespace: str, pod: str, container: str) -> str:
        """What a container's process has printed so far (all its restarts)."""
        path = self.log_dir / namespace / pod / f"{container}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def e2e_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodrunnerTestbed]:
    """A fresh podrunner-mode cluster with hack/podrunner running its pods (never skipped).

    DRIFTWARD_E2E_KUBECONFIG reuses a running podrunner cluster whose runner
    you started yourself (DRIFTWARD_E2E_LOG_DIR: that runner's --log-dir).
    """
    bin_dir = Path(_run_script("bin", step="build its binaries"))
    base = tmp_path_factory.mktemp("e2e")
    existing = os.environ.get("DRIFTWARD_E2E_KUBECONFIG")
    if existing:
        log_dir = Path(os.environ.get("DRIFTWARD_E2E_LOG_DIR", base / "logs"))
        yield PodrunnerTestbed("external", Path(existing), bin_dir, log_dir, base / "none.log")
        return
    name = f"driftward-e2e-{uuid.uuid4().hex[:6]}"
    kubeconfig = base / "kubeconfig"
    _run_script(
        "up",
        name,
        str(kubeconfig),
        step="start in podrunner mode",
        env={"DRIFTWARD_TESTBED_PODRUNNER": "1"},
    )
    bed = PodrunnerTestbed(name, kubeconfig, bin_dir, base / "logs", base / "podrunner.log")
    ready = base / "podrunner.ready"
    command = [
        sys.executable,
        "-m",
        "hack.podrunner",
        "--kubeconfig",
        str(kubeconfig),
        "--workdir",
        str(base / "pods"),
        "--log-dir",
        str(bed.log_dir),
        "--ready-file",
        str(ready),
        "--max-grace-seconds",
        "10",
    ]
    with bed.runner_log.open("wb") as log:
        runner = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if runner.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"hack/podrunner did not start on cluster {name} "
                    f"(exit code {runner.poll()}):\n{_tail(bed.runner_log)}\n"
                    f"Try it by hand: {' '.join(command)}",
                    pytrace=False,
                )
            time.sleep(0.2)
        yield bed
        if runner.poll() is not None:
            pytest.fail(
                f"hack/podrunner died during the session (exit code {runner.returncode}):\n"
                f"{_tail(bed.runner_log)}",
                pytrace=False,
            )
    finally:
        if runner.poll() is None:
            runner.send_signal(signal.SIGTERM)
            try:
                runner.wait(timeout=60)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait()
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "down", name], check=False)


@pytest.fixture(scope="session")
def e2e_api_client(e2e_cluster: PodrunnerTestbed) -> Iterator[client.ApiClient]:
    """A Kubernetes API client for the podrunner cluster."""
    with config.new_client_from_config(config_file=str(e2e_cluster.kubeconfig)) as api:
        yield api


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
