"""The user's side of the end-to-end path, shared by the e2e tests and ``make demo``.

Models on disk, the operator as a process, MonitoredModels in the cluster, and
HTTP traffic and labels sent to the serving pods.

Every hop is real: the operator runs as its own process (``driftward-operator``)
against the podrunner cluster, the serving and monitor containers run as
processes on their pods' loopback IPs (hack/podrunner), traffic is HTTP to
those IPs, and the API server holds every object. Only the container runtime
is stood in for.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import skops.io
from kubernetes import client
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parent.parent
GROUP, VERSION, PLURAL = "driftward.dev", "v1alpha1", "monitoredmodels"
FEATURES = ["f0", "f1", "f2", "f3"]
DIGEST_ANNOTATION = "driftward.dev/artifact-sha256"


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Artifact:
    """A model version on disk, pinned by digest."""

    version: str
    path: Path
    sha256: str

    @property
    def model(self) -> dict[str, str]:
        """spec.model for this version."""
        return {"version": self.version, "uri": self.path.as_uri(), "sha256": self.sha256}


@dataclass(frozen=True)
class Models:
    """Two versions of a classifier, its reference data, and held-out rows to send."""

    v1: Artifact
    v2: Artifact
    reference: Path
    reference_sha256: str
    rows: np.ndarray
    labels: np.ndarray
    accuracy: float
    """v2's accuracy on ``rows``: the performance baseline."""


def build_models(directory: Path) -> Models:
    """Train v1 and v2 on seeded data, save them as skops, and write the reference CSV."""
    x, y = make_classification(
        n_samples=6000, n_features=4, n_informative=3, n_redundant=0, random_state=7
    )
    train, held_x, held_y = slice(0, 4000), x[4000:], y[4000:]
    artifacts = []
    for version, c in (("v1", 1.0), ("v2", 0.3)):
        model = LogisticRegression(C=c, max_iter=500).fit(x[train], y[train])
        path = directory / f"{version}.skops"
        skops.io.dump(model, path)
        artifacts.append(Artifact(version, path, sha256_of(path)))
        accuracy = float((model.predict(held_x) == held_y).mean())
    reference = directory / "reference.csv"
    with reference.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*FEATURES, "label"])
        writer.writerows([*row, label] for row, label in zip(x[train], y[train], strict=True))
    return Models(
        artifacts[0],
        artifacts[1],
        reference,
        sha256_of(reference),
        held_x,
        held_y,
        accuracy,
    )


def build_manifest(
    name: str, models: Models, artifact: Artifact, *, replicas: int = 1, **policy: Any
) -> dict[str, Any]:
    """A MonitoredModel with a fast evaluation interval, for a test that must finish."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MonitoredModel",
        "metadata": {"name": name},
        "spec": {
            "model": artifact.model,
            "serving": {"replicas": replicas},
            "monitoring": {
                "reference": {
                    "uri": models.reference.as_uri(),
                    "sha256": models.reference_sha256,
                    "targetColumn": "label",
                },
                "features": [{"name": f, "type": "Numeric"} for f in FEATURES],
                "window": {"size": 1000, "minSamples": 200},
                "interval": "5s",
                "performance": {
                    "metric": "Accuracy",
                    "baseline": round(models.accuracy, 4),
                    "maxDegradation": 0.1,
                    "minLabels": 100,
                },
            },
            "policy": {"consecutiveBreaches": 2, "promotionWindow": "3s", **policy},
        },
    }


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OperatorProcess:
    """``driftward-operator`` as its own process, with its log and its HTTP port."""

    process: subprocess.Popen[bytes]
    log: Path
    port: int

    def metrics(self) -> str:
        """The operator's /metrics text."""
        return httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text

    def tail(self, lines: int = 40) -> str:
        """The end of the operator's log, for failure messages."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def run_operator(
    kubeconfig: Path, namespace: str, log: Path, *, fault: str = ""
) -> Iterator[OperatorProcess]:
    """Start the operator watching ``namespace``; stop it (SIGTERM) on exit."""
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "DRIFTWARD_OPERATOR_NAMESPACES": json.dumps([namespace]),
        "DRIFTWARD_OPERATOR_STANDALONE": "true",
        "DRIFTWARD_OPERATOR_RESYNC_SECONDS": "2",
        "DRIFTWARD_OPERATOR_LIVENESS_PORT": "0",
        "DRIFTWARD_OPERATOR_HTTP_HOST": "127.0.0.1",
        "DRIFTWARD_OPERATOR_HTTP_PORT": str(port),
        "DRIFTWARD_OPERATOR_FAULT": fault,
    }
    executable = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "driftward-operator"
    command = [str(executable)] if executable.exists() else ["driftward-operator"]
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    operator = OperatorProcess(process, log, port)
    try:
        yield operator
    finally:
        stop_process(process)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, *, every: float = 0.5) -> Any:
    """Poll until ``predicate`` returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (client.ApiException, httpx.HTTPError, KeyError, StopIteration) as exc:
            last_error, value = exc, None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last_error})")


class Model:
    """One MonitoredModel in the cluster, with the reads the scenarios need."""

    def __init__(self, api_client: client.ApiClient, namespace: str, name: str) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.namespace, self.name = namespace, name

    def create(self, manifest: dict[str, Any]) -> None:
        """Create the MonitoredModel."""
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, manifest
        )

    def get(self) -> dict[str, Any]:
        """The MonitoredModel as stored."""
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.name
        )
        return found

    def status(self) -> dict[str, Any]:
        """Its status (empty before the first write)."""
        return dict(self.get().get("status") or {})

    def condition(self, type_: str) -> dict[str, Any]:
        """One condition, or an empty dict."""
        conditions = self.status().get("conditions", [])
        return next((dict(c) for c in conditions if c["type"] == type_), {})

    def patch_spec(self, spec: dict[str, Any]) -> None:
        """Merge-patch the spec, as a user or a GitOps tool would."""
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.name, {"spec": spec}
        )

    def served_digest(self) -> str:
        """The artifact digest the Deployment's pod template serves."""
        deployment = self.apps.read_namespaced_deployment(self.name, self.namespace)
        return str((deployment.metadata.annotations or {}).get(DIGEST_ANNOTATION, ""))

    def ready_pod_ips(self, digest: str, replicas: int) -> list[str] | None:
        """The IPs of Ready pods serving ``digest``, once there are ``replicas`` of them."""
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"driftward.dev/model={self.name}"
        ).items
        ips = []
        for pod in pods:
            annotations = pod.metadata.annotations or {}
            ready = any(
                c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
            )
            if (
                annotations.get(DIGEST_ANNOTATION) == digest
                and ready
                and pod.metadata.deletion_timestamp is None
            ):
                ips.append(str(pod.status.pod_ip))
        return sorted(ips) if len(ips) == replicas else None

    def events(self, reason: str | None = None) -> list[Any]:
        """Events about this MonitoredModel, optionally of one reason."""
        items = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={self.name}"
        ).items
        return [
            e
            for e in items
            if e.involved_object.kind == "MonitoredModel" and reason in (None, e.reason)
        ]


@dataclass
class Traffic:
    """Predictions sent to the serving pods over HTTP, and what they answered."""

    ids: list[str]
    predictions: list[int]
    latencies: list[float]
    pods: list[str]
    """The pod IP each prediction was served by, so its label goes back to that pod."""


def send_predictions(
    ips: list[str], rows: np.ndarray, *, batch: int = 50, shift: float = 0.0
) -> Traffic:
    """POST /predict in batches, round-robin over the pods; ``shift`` moves f0 and f1.

    Two of the four features move, so the dataset-level rule (drifted share at
    least datasetDriftShare, 30% by default) is met, not just one feature's test.
    """
    sent = rows.copy()
    sent[:, :2] += shift
    traffic = Traffic([], [], [], [])
    with httpx.Client(timeout=10) as http:
        for i, start in enumerate(range(0, len(sent), batch)):
            ip = ips[i % len(ips)]
            chunk = sent[start : start + batch]
            began = time.perf_counter()
            response = http.post(f"http://{ip}:8080/predict", json={"instances": chunk.tolist()})
            traffic.latencies.append(time.perf_counter() - began)
            response.raise_for_status()
            body = response.json()
            traffic.ids.extend(body["ids"])
            traffic.predictions.extend(int(p) for p in body["predictions"])
            traffic.pods.extend([ip] * len(body["ids"]))
    return traffic


def send_labels(traffic: Traffic, labels: list[int]) -> None:
    """POST /feedback to the pod that served each prediction, in batches."""
    by_pod: dict[str, list[dict[str, Any]]] = {}
    for ident, pod, label in zip(traffic.ids, traffic.pods, labels, strict=True):
        by_pod.setdefault(pod, []).append({"id": ident, "label": int(label)})
    with httpx.Client(timeout=10) as http:
        for pod, items in by_pod.items():
            for start in range(0, len(items), 500):
                batch = {"labels": items[start : start + 500]}
                http.post(f"http://{pod}:8080/feedback", json=batch).raise_for_status()


def new_namespace(api_client: client.ApiClient, prefix: str) -> str:
    """Create a namespace for one scenario."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": name}})
    return name


MONITOR_METRICS_PORT = 9091


@dataclass
class PrometheusProcess:
    """A real Prometheus on loopback and the file its targets come from."""

    url: str
    targets: Path
    log: Path

    def set_targets(self, pods: dict[str, str], namespace: str) -> None:
        """Scrape these pods' monitor metrics (name -> IP), labelled as Kubernetes SD would."""
        groups = [
            {
                "targets": [f"{ip}:{MONITOR_METRICS_PORT}"],
                "labels": {"namespace": namespace, "pod": name},
            }
            for name, ip in sorted(pods.items())
        ]
        staging = self.targets.with_suffix(".tmp")
        staging.write_text(json.dumps(groups))
        staging.replace(self.targets)  # atomic: Prometheus never reads half a file

    def series_by_pod(self, query: str) -> dict[str, float]:
        """An instant query's values keyed by their pod label."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=5).json()
        return {
            r["metric"].get("pod", ""): float(r["value"][1])
            for r in answer.get("data", {}).get("result", [])
        }


@contextmanager
def run_prometheus(
    directory: Path, *, static: list[dict[str, Any]] | None = None
) -> Iterator[PrometheusProcess]:
    """Prometheus scraping every second: the ``static`` target groups, or a file_sd file.

    The binary is Debian's ``prometheus`` package, installed by `make test`
    (hack/ensure-promtool.sh); a missing binary fails loudly.
    """
    binary = shutil.which("prometheus")
    if binary is None:
        raise AssertionError(
            "no prometheus binary: `make test` installs it (hack/ensure-promtool.sh)"
        )
    port = free_port()
    targets = directory / "targets.json"
    targets.write_text(json.dumps([]))
    scrape: dict[str, Any] = {"job_name": "driftward", "scrape_interval": "1s"}
    if static is not None:
        scrape["static_configs"] = static
    else:
        scrape["file_sd_configs"] = [{"files": [str(targets)], "refresh_interval": "1s"}]
    config = directory / "prometheus.yml"
    config.write_text(json.dumps({"scrape_configs": [scrape]}))
    log = directory / "prometheus.log"
    command = [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'tsdb'}"]
    command += [f"--web.listen-address=127.0.0.1:{port}"]
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    prometheus = PrometheusProcess(f"http://127.0.0.1:{port}", targets, log)
    try:
        wait_for(
            lambda: httpx.get(f"{prometheus.url}/-/ready", timeout=2).status_code == 200,
            60,
            f"Prometheus ready (log {log})",
        )
        yield prometheus
    finally:
        stop_process(process)


@contextmanager
def discover_pods(
    prometheus: PrometheusProcess, api_client: client.ApiClient, namespace: str
) -> Iterator[None]:
    """Keep Prometheus's targets at the namespace's Running pods, as kubernetes_sd would."""
    core = client.CoreV1Api(api_client)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                pods = core.list_namespaced_pod(namespace).items
            except client.ApiException:
                pods = []
            prometheus.set_targets(
                {
                    p.metadata.name: p.status.pod_ip
                    for p in pods
                    if p.status.phase == "Running" and p.status.pod_ip
                },
                namespace,
            )
            stop.wait(1.0)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
