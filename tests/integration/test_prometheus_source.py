"""The Prometheus source against a real Prometheus scraping two real monitor processes.

Two ``driftward-serving monitor`` sidecars (the pods) count drifted traffic;
Prometheus scrapes their metrics ports with the labels its Kubernetes service
discovery would add (namespace, pod); the operator's ``read_aggregate`` with
``spec.monitoring.source.type: Prometheus`` queries it, profiles the reference
itself over HTTP, and must reach the verdict the Pods source reaches by asking
the monitors directly.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hack.scenario import (
    FEATURES,
    Models,
    build_manifest,
    build_models,
    free_port,
    run_prometheus,
    stop_process,
)

from driftward_operator.aggregate import PodWindow, compute_aggregate, compute_selection
from driftward_operator.children import build_monitor_config
from driftward_operator.lifecycle import VersionRef
from driftward_operator.monitors import ProfileCache
from driftward_operator.reconcile import read_aggregate
from driftward_serving.monitor.config import parse_monitor_config
from driftward_serving.monitor.verdict import State
from tests.integration.helpers import wait_for

NAMESPACE = "ml-prod"
NAME = "fraud"
METRIC = "driftward_monitor_window_counts"


@pytest.fixture
def models(tmp_path: Path) -> Models:
    return build_models(tmp_path)


@pytest.fixture
def reference_url(models: Models) -> Iterator[str]:
    """The reference CSV over HTTP on loopback, where the operator fetches it from."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(models.reference.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{models.reference.name}"
    finally:
        server.shutdown()
        server.server_close()


def start(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )


def predictions(models: Models, start_id: int, n: int, shift: float) -> list[dict[str, Any]]:
    rows = models.rows[:n].copy()
    rows[:, :2] += shift
    return [
        {"id": f"p{start_id + i}", "ts": 1_000.0 + i, "features": row.tolist(), "output": 0}
        for i, row in enumerate(rows)
    ]


def healthy(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def start_monitors(
    tmp_path: Path, config_path: Path, processes: list[subprocess.Popen[bytes]]
) -> dict[str, tuple[int, int]]:
    """Two monitor sidecars (the pods), healthy; their API and metrics ports by pod name."""
    pods = {"fraud-a": (free_port(), free_port()), "fraud-b": (free_port(), free_port())}
    env = {"DRIFTWARD_MONITOR_MODEL_NAME": NAME, "DRIFTWARD_MONITOR_MODEL_VERSION": "v2"}
    for pod, (port, metrics_port) in pods.items():
        command = [sys.executable, "-m", "driftward_serving.cli", "monitor"]
        command += ["--config-path", str(config_path), "--host", "127.0.0.1"]
        command += ["--port", str(port), "--metrics-port", str(metrics_port)]
        processes.append(start(command, tmp_path / f"{pod}.log", env))
    for pod, (port, _) in pods.items():
        wait_for(
            functools.partial(healthy, f"http://127.0.0.1:{port}/healthz"),
            60,
            f"monitor {pod} healthy (log {tmp_path / pod}.log)",
        )
    return pods


def test_verdicts_read_through_prometheus_match_the_pods_source(
    tmp_path: Path, models: Models, reference_url: str
) -> None:
    manifest = build_manifest(NAME, models, models.v2)
    manifest["metadata"]["namespace"] = NAMESPACE
    monitoring = manifest["spec"]["monitoring"]
    monitoring["reference"]["uri"] = reference_url
    active = VersionRef("v2", models.v2.path.as_uri(), models.v2.sha256)
    config_doc = build_monitor_config(manifest, active)
    config_path = tmp_path / "monitor.json"
    config_path.write_text(json.dumps(config_doc))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        pods = start_monitors(tmp_path, config_path, processes)
        for offset, (port, _) in enumerate(pods.values()):
            batch = predictions(models, offset * 1000, 300, 0.8)
            body = {"model": NAME, "version": "v2", "predictions": batch}
            assert httpx.post(f"http://127.0.0.1:{port}/v1/records", json=body).status_code == 200
            assert httpx.post(f"http://127.0.0.1:{port}/v1/evaluate").status_code == 200
        static = [
            {"targets": [f"127.0.0.1:{metrics}"], "labels": {"namespace": NAMESPACE, "pod": pod}}
            for pod, (_, metrics) in pods.items()
        ]
        with run_prometheus(tmp_path, static=static) as prometheus:
            monitoring["source"] = {
                "type": "Prometheus",
                "prometheus": {"url": prometheus.url, "selector": {"job": "driftward"}},
            }
            by_pod = functools.partial(prometheus.series_by_pod, f"count by (pod) ({METRIC})")
            wait_for(
                lambda: len(by_pod()) == 2,
                60,
                f"Prometheus scraping both monitors (log {prometheus.log})",
            )
            compare_sources(manifest, active, config_doc, pods)
    finally:
        for process in processes:
            stop_process(process)


def compare_sources(
    manifest: dict[str, Any],
    active: VersionRef,
    config_doc: dict[str, Any],
    pods: dict[str, tuple[int, int]],
) -> None:
    """read_aggregate through Prometheus, against the Pods source on the same monitors."""
    monitoring = manifest["spec"]["monitoring"]
    now = datetime.now(UTC)
    profiles = ProfileCache()
    aggregate, problems = read_aggregate(None, manifest, active, profiles, now)  # type: ignore[arg-type]
    assert aggregate is not None, problems
    assert problems == ()
    assert aggregate.pods == ("fraud-a", "fraud-b")
    assert aggregate.verdict.drift.samples == 600
    assert aggregate.verdict.drift.state is State.DRIFTED
    assert set(aggregate.verdict.drift.drifted_features) >= {"f0", "f1"}

    # The Pods source, asking the same monitors directly, reaches the same numbers.
    direct = [
        PodWindow(pod, document=httpx.get(f"http://127.0.0.1:{port}/v1/window").json())
        for pod, (port, _) in pods.items()
    ]
    selection = compute_selection(direct)
    assert selection.profile_digest is not None
    config = parse_monitor_config(config_doc)
    pods_verdict = compute_aggregate(
        selection, profiles.build(config, selection.profile_digest), config, now
    )
    assert pods_verdict is not None
    assert [(e.feature, e.statistic, e.p_value) for e in aggregate.verdict.drift.features] == [
        (e.feature, e.statistic, e.p_value) for e in pods_verdict.verdict.drift.features
    ]
    assert len(FEATURES) == len(aggregate.verdict.drift.features)

    # A selector that matches nothing is explained, not taken for "no drift".
    monitoring["source"]["prometheus"]["selector"] = {"job": "elsewhere"}
    missing, why = read_aggregate(None, manifest, active, profiles, now)  # type: ignore[arg-type]
    assert missing is None
    assert "no driftward_monitor_window_counts series for version v2" in why[0]
    # A Prometheus that is not there is named.
    monitoring["source"]["prometheus"]["url"] = f"http://127.0.0.1:{free_port()}"
    missing, why = read_aggregate(None, manifest, active, profiles, now)  # type: ignore[arg-type]
    assert missing is None
    assert "cannot query http://127.0.0.1:" in why[0]
