"""The operator asks a real model server why it is not ready (a digest mismatch here)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import skops.io
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from driftward_operator.pods import fetch_pod_readiness
from tests.integration.helpers import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mismatched_server(tmp_path: Path) -> Iterator[int]:
    features, labels = load_iris(return_X_y=True)
    artifact = tmp_path / "iris.skops"
    skops.io.dump(LogisticRegression(max_iter=300).fit(features, labels), artifact)
    port = free_port()
    env = {
        **os.environ,
        "DRIFTWARD_SERVING_MODEL_NAME": "iris",
        "DRIFTWARD_SERVING_MODEL_VERSION": "v1",
        "DRIFTWARD_SERVING_ARTIFACT_URI": artifact.as_uri(),
        "DRIFTWARD_SERVING_ARTIFACT_SHA256": "0" * 64,
        "DRIFTWARD_SERVING_HOST": "127.0.0.1",
        "DRIFTWARD_SERVING_PORT": str(port),
        "DRIFTWARD_SERVING_METRICS_PORT": str(free_port()),
        "DRIFTWARD_SERVING_MONITOR_URL": "",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftward_serving.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_digest_mismatch_is_reported_by_the_pod(mismatched_server: int) -> None:
    answer = wait_for(
        lambda: fetch_pod_readiness("iris-0", "127.0.0.1", mismatched_server),
        60,
        "the model server to answer its readiness probe",
    )
    assert answer.ready is False
    assert answer.reason == "DigestMismatch"
    assert "0" * 12 in answer.message


def test_unreachable_pod_gives_none() -> None:
    assert fetch_pod_readiness("gone", "127.0.0.1", free_port(), timeout=0.5) is None
