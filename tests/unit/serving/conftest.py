"""Fixtures for the serving unit tests: a tiny model trained in tmp_path, settings, a client.

Models are trained here from scikit-learn's bundled iris data (no download) and
saved as skops; the app is built with ``create_app`` on a fresh registry, and
tests read metrics through ``registry.get_sample_value``. Nothing here opens a
network connection beyond 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from driftward_serving import recordbatch
from driftward_serving.app import ServingApp, create_app
from driftward_serving.settings import ServingSettings

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MODEL = "iris"
VERSION = "v3"


@dataclass(frozen=True)
class Artifact:
    """A model saved to disk, with its digest and the data it was trained on."""

    path: Path
    sha256: str
    model: Any
    X: np.ndarray
    y: np.ndarray

    @property
    def uri(self) -> str:
        """The artifact as a file:// URI."""
        return self.path.as_uri()


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def iris_artifact(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    """LogisticRegression on iris, saved as skops."""
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    path = tmp_path_factory.mktemp("model") / "iris.skops"
    skops.io.dump(model, path)
    return Artifact(path=path, sha256=sha256_of(path), model=model, X=X, y=y)


@pytest.fixture
def make_settings(iris_artifact: Artifact) -> Callable[..., ServingSettings]:
    """Build settings for the iris artifact, hand-off off unless overridden."""

    def build(**overrides: Any) -> ServingSettings:
        values: dict[str, Any] = {
            "model_name": MODEL,
            "model_version": VERSION,
            "artifact_uri": iris_artifact.uri,
            "artifact_sha256": iris_artifact.sha256,
            "feature_names": FEATURES,
            "monitor_url": "",
            "host": "127.0.0.1",
        }
        values.update(overrides)
        return ServingSettings(**values)

    return build


@dataclass
class Served:
    """A running app under TestClient, with its registry."""

    client: TestClient
    app: ServingApp
    registry: CollectorRegistry

    def sample(self, name: str, **labels: str) -> float:
        """Read one sample, defaulting model/version labels; 0.0 if absent."""
        labels = {"model": MODEL, "version": VERSION, **labels}
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@pytest.fixture
def serve(make_settings: Callable[..., ServingSettings]) -> Iterator[Callable[..., Served]]:
    """Start apps (lifespan included) with settings overrides; closes them at teardown."""
    clients: list[TestClient] = []

    def start(**overrides: Any) -> Served:
        registry = CollectorRegistry()
        app = create_app(make_settings(**overrides), registry=registry)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return Served(client=client, app=app, registry=registry)

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    """The iris model served with default test settings."""
    return serve()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def decode_records_body(raw: bytes) -> dict[str, Any]:
    """A binary record batch as the JSON form of docs/contracts.md, to compare records."""
    batch = recordbatch.parse_record_batch(raw, max_rows=100_000)
    proba = batch.proba.tolist() if batch.proba is not None else [None] * batch.rows
    return {
        "model": batch.model,
        "version": batch.version,
        "predictions": [
            {"id": ident.decode(), "ts": ts, "features": row, "output": output, "proba": p}
            for ident, ts, row, output, p in zip(
                batch.ids.tolist(),
                batch.ts.tolist(),
                batch.features.tolist(),
                batch.outputs.tolist(),
                proba,
                strict=True,
            )
        ],
        "labels": batch.labels,
    }


class MonitorStub:
    """A stand-in monitor on 127.0.0.1 that records every POST /v1/records body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        # Set to (status, JSON body) to refuse every POST as the real monitor would.
        self.refusal: tuple[int, dict[str, Any]] | None = None
        self.refused = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.headers["Content-Type"] == recordbatch.MEDIA_TYPE
                body = decode_records_body(raw)
                status = 200 if self.path == "/v1/records" else 404
                answer: dict[str, Any] = {
                    "accepted_predictions": len(body["predictions"]),
                    "accepted_labels": len(body["labels"]),
                }
                if stub.refusal is not None:
                    (status, answer), stub.refused = stub.refusal, stub.refused + 1
                elif status == 200:
                    stub.bodies.append(body)
                reply = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def predictions(self) -> list[dict[str, Any]]:
        """Every prediction record received so far."""
        return [p for body in self.bodies for p in body["predictions"]]

    @property
    def labels(self) -> list[dict[str, Any]]:
        """Every label record received so far."""
        return [lab for body in self.bodies for lab in body["labels"]]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def monitor_stub() -> Iterator[MonitorStub]:
    """A running monitor stub."""
    stub = MonitorStub()
    yield stub
    stub.close()


def wait_for(condition: Callable[[], bool], what: str, limit_seconds: float = 15.0) -> None:
    """Poll until `condition` holds, failing after a generous bound (not a timing check)."""
    deadline = time.monotonic() + limit_seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)
