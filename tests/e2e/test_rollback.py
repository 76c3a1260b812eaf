"""Drift- and degradation-triggered rollback, end to end, on the podrunner cluster.

Traffic goes over HTTP to the serving processes on their pod IPs; the monitor
sidecar processes compute verdicts; the operator process reads and merges them,
the policy decides, and the Deployment in the API server is rolled back with
status and Events saying why. Each scenario runs in its own namespace with its
own operator process.

Measurements (drift onset to Deployment patched, API requests per model per
minute) are printed and written to ``$DRIFTWARD_E2E_RESULTS`` when it is set.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hack.scenario import (
    Model,
    Models,
    OperatorProcess,
    build_manifest,
    build_models,
    discover_pods,
    new_namespace,
    run_operator,
    run_prometheus,
    send_labels,
    send_predictions,
    wait_for,
)
from kubernetes import client

from tests.conftest import PodrunnerTestbed

RESULTS: dict[str, Any] = {}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """v1, v2 and the reference, trained once for every scenario."""
    return build_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module", autouse=True)
def crds(e2e_cluster: PodrunnerTestbed) -> None:
    """The MonitoredModel CRD, installed with kubectl as a user would."""
    e2e_cluster.kubectl("apply", "--server-side", "-f", "crds/driftward.dev_monitoredmodels.yaml")
    e2e_cluster.kubectl(
        "wait", "--for=condition=Established", "crd/monitoredmodels.driftward.dev", "--timeout=30s"
    )


@pytest.fixture(scope="module", autouse=True)
def report_results() -> Iterator[None]:
    """Print the measurements at the end, and keep them where CI can read them."""
    yield
    if RESULTS:
        print("\ne2e measurements:\n" + json.dumps(RESULTS, indent=2))
        target = os.environ.get("DRIFTWARD_E2E_RESULTS")
        if target:
            Path(target).write_text(json.dumps(RESULTS, indent=2))


def _deploy_candidate(
    model: Model,
    models: Models,
    operator: OperatorProcess,
    replicas: int,
    source: dict[str, Any] | None = None,
    **policy: Any,
) -> list[str]:
    """v1 deployed and promoted, then v2 deployed as a candidate; v2's pod IPs.

    ``source`` is spec.monitoring.source (the default Pods source when None).
    """
    manifest = build_manifest(model.name, models, models.v1, replicas=replicas, **policy)
    if source is not None:
        manifest["spec"]["monitoring"]["source"] = source
    model.create(manifest)
    wait_for(
        lambda: model.status().get("stableVersion") == "v1",
        120,
        f"v1 to be promoted (operator log:\n{operator.tail()})",
    )
    model.patch_spec({"model": models.v2.model, "policy": {"promotionWindow": "1h"}})
    ips: list[str] = wait_for(
        lambda: model.ready_pod_ips(models.v2.sha256, replicas),
        120,
        f"{replicas} Ready v2 pods",
    )
    wait_for(lambda: model.status().get("activeVersion") == "v2", 30, "v2 active")
    return ips


def _rows(models: Models, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return models.rows[rng.integers(0, len(models.rows), size=n)]


def _rollback_events(model: Model, reason: str) -> list[Any]:
    return [e for e in model.events(reason) if ".rollback." in e.metadata.name]


def test_drift_rolls_back_to_stable_and_a_gitops_resync_does_not_undo_it(
    e2e_cluster: PodrunnerTestbed, e2e_api_client: client.ApiClient, models: Models, tmp_path: Path
) -> None:
    namespace = new_namespace(e2e_api_client, "e2e-drift")
    model = Model(e2e_api_client, namespace, "fraud")
    with run_operator(e2e_cluster.kubeconfig, namespace, tmp_path / "operator.log") as operator:
        ips = _deploy_candidate(model, models, operator, replicas=2)
        baseline = send_predictions(ips, _rows(models, 800, 1))
        wait_for(
            lambda: model.status().get("drift", {}).get("state") == "Ok",
            60,
            "an Ok drift verdict on in-distribution traffic",
        )
        assert model.status()["drift"]["pods"] == 2  # both pods' windows merged

        onset = time.monotonic()
        drifted = send_predictions(ips, _rows(models, 2000, 2), shift=3.0)
        wait_for(lambda: model.served_digest() == models.v1.sha256, 90, "the rollback to v1")
        RESULTS["drift_onset_to_deployment_patched_seconds"] = round(time.monotonic() - onset, 1)
        RESULTS["serving_p50_ms"] = {
            "before_drift": round(1000 * float(np.median(baseline.latencies)), 2),
            "during_drift": round(1000 * float(np.median(drifted.latencies)), 2),
        }

        status = wait_for(
            lambda: (s := model.status()).get("phase") == "RolledBack" and s,
            30,
            "phase RolledBack",
        )
        assert status["activeVersion"] == "v1"
        rolled_back = model.condition("RolledBack")
        assert rolled_back["status"] == "True"
        assert rolled_back["reason"] == "DriftDetected"
        assert re.search(r"drift in f[01] \(KolmogorovSmirnov .*, f[01] \(", rolled_back["message"])
        assert status["history"][0]["outcome"] == "RolledBack"
        assert len(_rollback_events(model, "DriftDetected")) == 1
        assert 'reason="DriftDetected"} 1.0' in operator.metrics()

        # Argo CD re-applies the unchanged spec: nothing flips back.
        model.patch_spec(model.get()["spec"])
        time.sleep(12)  # more than two evaluation intervals and several resyncs
        assert model.served_digest() == models.v1.sha256
        assert model.status()["activeVersion"] == "v1"
        assert len(_rollback_events(model, "DriftDetected")) == 1

        # Steady state on v1: the operator's API requests per model per minute.
        before = _api_requests(operator)
        time.sleep(30)
        RESULTS["api_requests_per_model_per_minute"] = round(
            (_api_requests(operator) - before) * 2, 1
        )


def test_drift_read_through_prometheus_rolls_back(
    e2e_cluster: PodrunnerTestbed, e2e_api_client: client.ApiClient, models: Models, tmp_path: Path
) -> None:
    """The same rollback when the operator reads the monitors' windows from Prometheus."""
    namespace = new_namespace(e2e_api_client, "e2e-prom")
    model = Model(e2e_api_client, namespace, "ledger")
    with (
        run_prometheus(tmp_path) as prometheus,
        discover_pods(prometheus, e2e_api_client, namespace),
        run_operator(e2e_cluster.kubeconfig, namespace, tmp_path / "operator.log") as operator,
    ):
        source = {"type": "Prometheus", "prometheus": {"url": prometheus.url}}
        ips = _deploy_candidate(model, models, operator, replicas=2, source=source)
        send_predictions(ips, _rows(models, 800, 11))
        wait_for(
            lambda: (
                (d := model.status().get("drift", {})).get("state") == "Ok"
                and d.get("version") == "v2"
            ),
            90,
            f"an Ok verdict on v2 read through Prometheus (log {prometheus.log})",
        )
        assert model.status()["drift"]["pods"] == 2

        onset = time.monotonic()
        send_predictions(ips, _rows(models, 2000, 12), shift=3.0)
        wait_for(lambda: model.served_digest() == models.v1.sha256, 120, "the rollback to v1")
        RESULTS["prometheus_source_drift_onset_to_deployment_patched_seconds"] = round(
            time.monotonic() - onset, 1
        )
        rolled_back = wait_for(
            lambda: (c := model.condition("RolledBack")).get("status") == "True" and c,
            30,
            "RolledBack=True",
        )
        assert rolled_back["reason"] == "DriftDetected"
        assert len(_rollback_events(model, "DriftDetected")) == 1

    # With Prometheus gone the operator says where it could not read, and holds its state.
    with run_operator(e2e_cluster.kubeconfig, namespace, tmp_path / "operator-2.log"):
        drifted = wait_for(
            lambda: (c := model.condition("Drifted")).get("reason") == "MonitorsUnreachable" and c,
            60,
            "Drifted=Unknown naming the missing Prometheus",
        )
        assert f"cannot query {prometheus.url}/api/v1/query" in drifted["message"]
        assert model.served_digest() == models.v1.sha256


def _api_requests(operator: OperatorProcess) -> float:
    total = 0.0
    for line in operator.metrics().splitlines():
        if line.startswith("driftward_operator_api_requests_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_degraded_accuracy_from_late_labels_rolls_back(
    e2e_cluster: PodrunnerTestbed, e2e_api_client: client.ApiClient, models: Models, tmp_path: Path
) -> None:
    namespace = new_namespace(e2e_api_client, "e2e-degrade")
    model = Model(e2e_api_client, namespace, "churn")
    with run_operator(e2e_cluster.kubeconfig, namespace, tmp_path / "operator.log") as operator:
        ips = _deploy_candidate(model, models, operator, replicas=1)
        traffic = send_predictions(ips, _rows(models, 600, 3))
        wait_for(lambda: model.status().get("drift", {}).get("state") == "Ok", 60, "drift Ok")
        # The truth arrives later, and the model got most of it wrong: no input drift at all.
        wrong = [1 - p if i % 4 else p for i, p in enumerate(traffic.predictions)]
        send_labels(traffic, wrong)
        wait_for(lambda: model.served_digest() == models.v1.sha256, 90, "the rollback to v1")
        rolled_back = wait_for(
            lambda: (c := model.condition("RolledBack")).get("status") == "True" and c,
            30,
            "RolledBack=True",
        )
        assert rolled_back["reason"] == "PerformanceDegraded"
        assert "Accuracy" in rolled_back["message"]
        assert model.status()["drift"]["state"] == "Ok"
        assert len(_rollback_events(model, "PerformanceDegraded")) == 1


def test_noise_and_too_few_samples_never_act(
    e2e_cluster: PodrunnerTestbed, e2e_api_client: client.ApiClient, models: Models, tmp_path: Path
) -> None:
    namespace = new_namespace(e2e_api_client, "e2e-noise")
    model = Model(e2e_api_client, namespace, "noise")
    with run_operator(e2e_cluster.kubeconfig, namespace, tmp_path / "operator.log") as operator:
        ips = _deploy_candidate(model, models, operator, replicas=1)
        send_predictions(ips, _rows(models, 100, 4))  # below minSamples (200)
        wait_for(
            lambda: model.status().get("drift", {}).get("state") == "Inconclusive",
            60,
            "an Inconclusive verdict on 100 samples",
        )
        assert model.condition("Drifted")["status"] == "Unknown"
        assert model.status()["breaches"]["drift"] == 0
        # A long stretch of in-distribution traffic at the default thresholds.
        states = []
        for seed in range(8):
            send_predictions(ips, _rows(models, 400, 10 + seed))
            time.sleep(5)
            states.append(model.status()["drift"]["state"])
        assert model.served_digest() == models.v2.sha256
        assert model.status()["activeVersion"] == "v2"
        assert _rollback_events(model, "DriftDetected") == []
        assert states.count("Drifted") <= 1, states  # never twice in a row, so never acted on
        RESULTS["noise_run_drift_states"] = states


def test_dry_run_only_says_it_would_roll_back(
    e2e_cluster: PodrunnerTestbed, e2e_api_client: client.ApiClient, models: Models, tmp_path: Path
) -> None:
    namespace = new_namespace(e2e_api_client, "e2e-dryrun")
    model = Model(e2e_api_client, namespace, "dry")
    with run_operator(e2e_cluster.kubeconfig, namespace, tmp_path / "operator.log") as operator:
        ips = _deploy_candidate(model, models, operator, replicas=1, dryRun=True)
        send_predictions(ips, _rows(models, 1500, 5), shift=3.0)
        event = wait_for(lambda: model.events("WouldRollBack"), 60, "a WouldRollBack Event")[0]
        assert event.message.startswith("dry run: would roll back to stable version v1")
        time.sleep(10)
        assert model.served_digest() == models.v2.sha256
        assert model.status()["activeVersion"] == "v2"
        assert model.condition("RolledBack")["status"] == "False"
        assert model.condition("Drifted")["status"] == "True"


@pytest.mark.parametrize("fault", ["exit-after-rollback-event", "exit-after-rollback-status"])
def test_operator_killed_mid_rollback_rolls_back_exactly_once(
    e2e_cluster: PodrunnerTestbed,
    e2e_api_client: client.ApiClient,
    models: Models,
    tmp_path: Path,
    fault: str,
) -> None:
    namespace = new_namespace(e2e_api_client, "e2e-crash")
    model = Model(e2e_api_client, namespace, "crash")
    log = tmp_path / "operator.log"
    with run_operator(e2e_cluster.kubeconfig, namespace, log, fault=fault) as operator:
        ips = _deploy_candidate(model, models, operator, replicas=1)
        send_predictions(ips, _rows(models, 1500, 6), shift=3.0)
        wait_for(
            lambda: operator.process.poll() is not None, 90, f"the operator to exit at {fault}"
        )
        assert operator.process.returncode == 17, operator.tail()
    with run_operator(e2e_cluster.kubeconfig, namespace, log):
        wait_for(lambda: model.served_digest() == models.v1.sha256, 90, "the rollback to v1")
        wait_for(lambda: model.status().get("phase") == "RolledBack", 30, "phase RolledBack")
        time.sleep(12)  # a few more evaluations and resyncs: nothing happens twice
        status = model.status()
    assert len(_rollback_events(model, "DriftDetected")) == 1
    assert [e["outcome"] for e in status["history"]].count("RolledBack") == 1
    assert len(status["rollbackTimes"]) == 1
    assert status["activeVersion"] == "v1"
