"""hack/podrunner on a podrunner-mode cluster: pods' containers really run at their pod IPs.

What these tests hold the runner to: a pod's IP is a loopback address other
than 127.0.0.1; its process answers HTTP at that IP; Ready follows the real
readiness probe both ways; an exit is restarted and counted; deleting the pod
kills its process. The model server's own command (``driftward-serving serve``)
and the operator's own pod template run the same way.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import skops.io
from kubernetes import client, watch
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from driftward_operator.children import (
    build_config_map,
    build_deployment,
    build_service_account,
)
from driftward_operator.lifecycle import VersionRef
from driftward_operator.pods import fetch_pod_readiness
from tests.conftest import PodrunnerTestbed
from tests.integration.helpers import temporary_namespace, wait_for

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

SERVER = textwrap.dedent(
    """
    import http.server, os

    state = {"ready": False}

    class Handler(http.server.BaseHTTPRequestHandler):
        def reply(self, code, text):
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/ready":
                self.reply(200 if state["ready"] else 503, str(state["ready"]))
            else:
                env = os.environ
                self.reply(200, f"{env['POD_NAME']} {env['GREETING']} {os.getpid()}")

        def do_POST(self):
            if self.path == "/exit":
                os._exit(3)
            state["ready"] = self.path == "/ready"
            self.reply(200, str(state["ready"]))

    address = (os.environ["HOST"], int(os.environ["PORT"]))
    http.server.ThreadingHTTPServer(address, Handler).serve_forever()
    """
)


@pytest.fixture
def ns(e2e_api_client: client.ApiClient) -> Iterator[str]:
    """A fresh namespace on the podrunner cluster, deleted afterwards."""
    with temporary_namespace(e2e_api_client, "pr") as name:
        yield name


def _pods(core: client.CoreV1Api, ns: str, selector: str) -> list[Any]:
    return [
        p
        for p in core.list_namespaced_pod(ns, label_selector=selector).items
        if p.metadata.deletion_timestamp is None
    ]


def _condition(pod: Any, type_: str) -> str | None:
    for c in pod.status.conditions or []:
        if c.type == type_:
            return str(c.status)
    return None


def _get(url: str, timeout: float = 2.0) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return None


def _status(url: str) -> int | None:
    response = _get(url)
    return None if response is None else response.status_code


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class ReadyHistory:
    """Every Ready status each pod of a namespace had, as the watch delivered them."""

    def __init__(self, api: client.ApiClient, ns: str) -> None:
        self._seen: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._error: Exception | None = None
        self._watch = watch.Watch()
        core = client.CoreV1Api(api)
        stream = self._watch.stream(core.list_namespaced_pod, ns, timeout_seconds=300)
        threading.Thread(target=self._record, args=(stream,), daemon=True).start()

    def _record(self, stream: Iterator[dict[str, Any]]) -> None:
        try:
            for event in stream:
                pod = event["object"]
                with self._lock:
                    ready = str(_condition(pod, "Ready"))
                    self._seen.setdefault(pod.metadata.name, []).append(ready)
        except Exception as exc:  # the stream breaks when close() stops it
            if not self._closed:
                self._error = exc

    def close(self) -> None:
        """Stop watching."""
        self._closed = True
        self._watch.stop()

    def seen(self, name: str) -> list[str]:
        """The Ready statuses seen for the pod so far, oldest first."""
        assert self._error is None, f"the pod watch broke: {self._error!r}"
        with self._lock:
            return list(self._seen.get(name, []))


def _script_deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "web",
                            "image": "example.invalid/ignored:1",
                            "command": ["python"],
                            "args": ["/app/server.py"],
                            "env": [
                                {"name": "PORT", "value": "8000"},
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                                {
                                    "name": "GREETING",
                                    "valueFrom": {
                                        "configMapKeyRef": {"name": name, "key": "greeting"}
                                    },
                                },
                            ],
                            "ports": [{"name": "http", "containerPort": 8000}],
                            "readinessProbe": {
                                "httpGet": {"path": "/ready", "port": "http"},
                                "periodSeconds": 1,
                                "failureThreshold": 1,
                            },
                            "volumeMounts": [{"name": "app", "mountPath": "/app"}],
                        }
                    ],
                    "volumes": [{"name": "app", "configMap": {"name": name}}],
                },
            },
        },
    }


def test_script_pod_runs_at_its_ip_and_ready_follows_the_probe(
    e2e_api_client: client.ApiClient, e2e_cluster: PodrunnerTestbed, ns: str
) -> None:
    core, apps = client.CoreV1Api(e2e_api_client), client.AppsV1Api(e2e_api_client)
    core.create_namespaced_config_map(
        ns,
        {"metadata": {"name": "web"}, "data": {"server.py": SERVER, "greeting": "hello"}},
    )
    ready_history = ReadyHistory(e2e_api_client, ns)
    apps.create_namespaced_deployment(ns, _script_deployment("web"))
    pod = wait_for(
        lambda: next((p for p in _pods(core, ns, "app=web") if p.status.pod_ip), None),
        60,
        "the pod to be scheduled and given an IP",
    )
    ip = ipaddress.ip_address(pod.status.pod_ip)
    assert ip.is_loopback
    assert str(ip) != "127.0.0.1"
    base = f"http://{ip}:8000"

    # The process answers at the pod IP (a real process, with the pod's env).
    answer = wait_for(
        lambda: _get(f"{base}/"), 60, f"the container to answer at {base} "
    ).text.split()
    assert answer[:2] == [pod.metadata.name, "hello"]
    pid = int(answer[2])
    assert _pid_alive(pid)

    # Its readiness endpoint says 503, so the pod must stay not Ready.
    assert _status(f"{base}/ready") == 503
    for _ in range(4):
        current = core.read_namespaced_pod(pod.metadata.name, ns)
        assert _condition(current, "Ready") == "False", "Ready before the readiness probe passed"
        assert current.status.phase == "Running"
        assert current.status.container_statuses[0].ready is False
        assert current.status.container_statuses[0].state.running is not None
        time.sleep(1)  # a probe period

    # The probe passes: Ready, and the Deployment counts it as available.
    # Until now, no version of the pod the API server sent out said Ready=True.
    assert "True" not in ready_history.seen(pod.metadata.name), ready_history.seen(
        pod.metadata.name
    )
    httpx.post(f"{base}/ready", trust_env=False)
    wait_for(
        lambda: _condition(core.read_namespaced_pod(pod.metadata.name, ns), "Ready") == "True",
        20,
        "the pod to become Ready after its readiness probe passes",
    )
    wait_for(
        lambda: apps.read_namespaced_deployment("web", ns).status.available_replicas == 1,
        20,
        "the Deployment to count the pod as available",
    )

    # ...and fails again: Ready goes back to False.
    httpx.post(f"{base}/unready", trust_env=False)
    wait_for(
        lambda: _condition(core.read_namespaced_pod(pod.metadata.name, ns), "Ready") == "False",
        20,
        "the pod to lose Ready when its readiness probe fails",
    )

    # The process exits with code 3: restarted, counted, and the exit recorded.
    with pytest.raises(httpx.HTTPError):
        httpx.post(f"{base}/exit", trust_env=False)

    def restarted_container() -> Any:
        status = core.read_namespaced_pod(pod.metadata.name, ns).status.container_statuses[0]
        return status if status.restart_count == 1 and status.state.running else None

    restarted = wait_for(restarted_container, 30, "the container to be restarted after it exited")
    assert restarted.last_state.terminated.exit_code == 3
    new_pid = int(wait_for(lambda: _get(f"{base}/"), 30, "the restarted process").text.split()[2])
    assert new_pid != pid
    assert not _pid_alive(pid)
    assert "=== podrunner: start 1" in e2e_cluster.container_log(ns, pod.metadata.name, "web")

    # Deleting the pod kills its process; the Deployment's replacement runs.
    core.delete_namespaced_pod(pod.metadata.name, ns)
    wait_for(
        lambda: (
            pod.metadata.name not in [p.metadata.name for p in core.list_namespaced_pod(ns).items]
        ),
        30,
        "the deleted pod to be released by the runner and removed",
    )
    assert not _pid_alive(new_pid), "the deleted pod's process is still running"
    replacement = wait_for(
        lambda: next(
            (p for p in _pods(core, ns, "app=web") if p.metadata.name != pod.metadata.name), None
        ),
        30,
        "the replacement pod",
    )
    wait_for(
        lambda: (
            (r := _get(f"http://{replacement.status.pod_ip}:8000/"))
            and r.text.startswith(replacement.metadata.name)
        ),
        60,
        "the replacement pod's process",
    )
    apps.delete_namespaced_deployment("web", ns)
    ready_history.close()


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path, str]:
    """A skops model and a reference CSV on disk, with their sha256 digests."""
    base = tmp_path_factory.mktemp("iris")
    features, labels = load_iris(return_X_y=True)
    model = base / "iris.skops"
    skops.io.dump(LogisticRegression(max_iter=300).fit(features, labels), model)
    reference = base / "reference.csv"
    rows = [",".join(FEATURES)] + [",".join(f"{v:.1f}" for v in row) for row in features]
    reference.write_text("\n".join(rows) + "\n")
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    return model, digest, reference, hashlib.sha256(reference.read_bytes()).hexdigest()


def _serving_pod(name: str, model: Path, sha256: str) -> dict[str, Any]:
    env = {
        "DRIFTWARD_SERVING_MODEL_NAME": "iris",
        "DRIFTWARD_SERVING_MODEL_VERSION": "v1",
        "DRIFTWARD_SERVING_ARTIFACT_URI": model.as_uri(),
        "DRIFTWARD_SERVING_ARTIFACT_SHA256": sha256,
        "DRIFTWARD_SERVING_PORT": "8080",
        "DRIFTWARD_SERVING_METRICS_PORT": "9090",
        "DRIFTWARD_SERVING_MONITOR_URL": "",
    }

    def probe(path: str, port: int | str, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": port},
            "periodSeconds": 1,
            "failureThreshold": failures,
        }

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "containers": [
                {
                    "name": "model-server",
                    "image": "ghcr.io/driftward/driftward:0.1.0",
                    # args and no command: the image has no ENTRYPOINT (see the Dockerfile).
                    "args": ["driftward-serving", "serve"],
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                    "ports": [
                        {"name": "http", "containerPort": 8080},
                        {"name": "metrics", "containerPort": 9090},
                    ],
                    # As in the operator's template: liveness waits for start-up (imports).
                    "startupProbe": probe("/v2/health/live", "http", 120),
                    "readinessProbe": probe("/v2/health/ready", "http", 3),
                    "livenessProbe": probe("/v2/health/live", 8080, 3),
                }
            ]
        },
    }


def test_model_server_pod_is_ready_only_with_the_right_digest(
    e2e_api_client: client.ApiClient, ns: str, iris_model: tuple[Path, str, Path, str]
) -> None:
    core = client.CoreV1Api(e2e_api_client)
    model, digest, _, _ = iris_model
    core.create_namespaced_pod(ns, _serving_pod("good", model, digest))
    core.create_namespaced_pod(ns, _serving_pod("bad", model, "0" * 64))

    good = wait_for(
        lambda: (
            (p := core.read_namespaced_pod("good", ns)) and _condition(p, "Ready") == "True" and p
        ),
        90,
        "the model server pod with the right digest to become Ready",
    )
    assert _status(f"http://{good.status.pod_ip}:8080/v2/health/ready") == 200
    infer = httpx.post(
        f"http://{good.status.pod_ip}:8080/v2/models/iris/infer",
        json={
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [1, 4],
                    "datatype": "FP64",
                    "data": [5.1, 3.5, 1.4, 0.2],
                }
            ]
        },
        trust_env=False,
        timeout=10,
    )
    assert infer.status_code == 200, infer.text
    assert infer.json()["model_name"] == "iris"

    bad = core.read_namespaced_pod("bad", ns)
    answer = wait_for(
        lambda: fetch_pod_readiness("bad", bad.status.pod_ip, 8080),
        90,
        "the model server with the wrong digest to answer its readiness endpoint",
    )
    assert answer.ready is False
    assert answer.reason == "DigestMismatch"
    assert _status(f"http://{bad.status.pod_ip}:8080/v2/health/ready") == 503
    for _ in range(3):
        bad = core.read_namespaced_pod("bad", ns)
        assert _condition(bad, "Ready") == "False"
        assert bad.status.container_statuses[0].ready is False
        assert bad.status.container_statuses[0].state.running is not None
        time.sleep(1)  # a probe period


def test_the_operators_own_pod_template_runs(
    e2e_api_client: client.ApiClient,
    e2e_cluster: PodrunnerTestbed,
    ns: str,
    iris_model: tuple[Path, str, Path, str],
) -> None:
    """Both containers of build_deployment's pod run; serving hands records to its monitor."""
    core, apps = client.CoreV1Api(e2e_api_client), client.AppsV1Api(e2e_api_client)
    model, digest, reference, reference_digest = iris_model
    mm: dict[str, Any] = {
        "apiVersion": "driftward.dev/v1alpha1",
        "kind": "MonitoredModel",
        "metadata": {"name": "iris", "namespace": ns, "uid": str(uuid.uuid4())},
        "spec": {
            "model": {"version": "v1", "uri": model.as_uri(), "sha256": digest},
            "monitoring": {
                "reference": {"uri": reference.as_uri(), "sha256": reference_digest},
                "features": [{"name": f, "type": "Numeric"} for f in FEATURES],
                "window": {"size": 500, "minSamples": 30},
                "interval": "5s",
            },
        },
    }
    active = VersionRef("v1", model.as_uri(), digest)
    children = [
        build_service_account(mm),
        build_config_map(mm, active),
        build_deployment(mm, active),
    ]
    for child in children:
        assert child is not None
        # No MonitoredModel exists on this cluster: an owner reference would get them collected.
        child["metadata"].pop("ownerReferences")
    sa, cm, deployment = children
    core.create_namespaced_service_account(ns, sa)
    core.create_namespaced_config_map(ns, cm)
    apps.create_namespaced_deployment(ns, deployment)

    pod = wait_for(
        lambda: next(
            (
                p
                for p in _pods(core, ns, "driftward.dev/model=iris")
                if _condition(p, "Ready") == "True"
            ),
            None,
        ),
        120,
        "the operator's pod (model-server + monitor) to become Ready",
    )
    assert [s.ready for s in pod.status.container_statuses] == [True, True]
    ip = pod.status.pod_ip
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]] * 10
    predicted = httpx.post(
        f"http://{ip}:8080/predict",
        json={"instances": [dict(zip(FEATURES, r, strict=True)) for r in rows]},
        trust_env=False,
        timeout=10,
    )
    assert predicted.status_code == 200, predicted.text

    def monitor_samples() -> int:
        window = _get(f"http://{ip}:8081/v1/window")
        ok = window is not None and window.status_code == 200
        return int(window.json()["samples"]) if window is not None and ok else 0

    # Serving reaches its sidecar at 127.0.0.1:8081 as in a real pod; the runner
    # points that at the pod IP, where the monitor listens.
    wait_for(
        lambda: monitor_samples() >= len(rows),
        30,
        f"the monitor at {ip}:8081 to hold the {len(rows)} records sent through serving",
    )
    assert _status(f"http://{ip}:9090/metrics") == 200
    assert _status(f"http://{ip}:9091/metrics") == 200
    log = e2e_cluster.container_log(ns, pod.metadata.name, "monitor")
    assert log, "the monitor container wrote no log"
