"""The MonitoredModel CRD on the real API server: examples apply, bad manifests are refused.

Each invalid manifest must be rejected by the API server itself (schema or CEL),
with a message that names the offending field.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import Testbed

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "crds" / "examples"
GROUP, VERSION, PLURAL = "driftward.dev", "v1alpha1", "monitoredmodels"


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    return loaded


def create(api_client: client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api_client)
    created: dict[str, Any] = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )
    return created


@pytest.mark.parametrize("name", ["minimal", "full"])
def test_examples_are_accepted_and_defaulted(
    crd_installed: None, api_client: client.ApiClient, namespace: str, name: str
) -> None:
    created = create(api_client, namespace, example(name))
    spec = created["spec"]
    # Defaults come from the schema, applied by the API server.
    assert spec["model"]["format"] == "Skops"
    assert spec["policy"]["onEstimatedDegradation"] in {"Ignore", "Alert"}
    assert spec["monitoring"]["window"]["size"] >= 100
    assert spec["monitoring"]["drift"]["correction"] in {"Holm", "BenjaminiHochberg"}
    assert spec["serving"]["replicas"] >= 1
    assert spec["serving"]["sklearnVersionMismatch"] in {"Warn", "Refuse"}


def test_kubectl_explain_teaches_the_api(crd_installed: None, testbed: Testbed) -> None:
    # Discovery can lag the CRD's establishment by a moment.
    deadline = time.monotonic() + 30
    while True:
        try:
            out = testbed.kubectl("explain", "mm.spec.policy.onDrift")
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert "Rollback to the stable version" in out
    assert "monitoredmodels" in testbed.kubectl("api-resources", "--api-group=driftward.dev")
    assert "mm" in testbed.kubectl("api-resources", "--categories=driftward")


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(mm: dict[str, Any]) -> None:
        node = mm
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        node[leaf] = value

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(mm: dict[str, Any]) -> None:
        node = mm
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]
        del node[leaf]

    return mutate


def _both(*mutations: Mutation) -> Mutation:
    def mutate(mm: dict[str, Any]) -> None:
        for m in mutations:
            m(mm)

    return mutate


# (id, mutation of the minimal example, text the API server's message must contain)
INVALID: list[tuple[str, Mutation, str]] = [
    ("missing-digest", _drop("spec.model.sha256"), "spec.model.sha256: Required value"),
    ("short-digest", _set("spec.model.sha256", "abc123"), "spec.model.sha256: Invalid value"),
    ("uppercase-digest", _set("spec.model.sha256", "A" * 64), "spec.model.sha256: Invalid value"),
    ("missing-version", _drop("spec.model.version"), "spec.model.version: Required value"),
    ("version-with-space", _set("spec.model.version", "v 2"), "spec.model.version: Invalid value"),
    ("ftp-uri", _set("spec.model.uri", "ftp://x/model"), "spec.model.uri must start with file://"),
    (
        "unknown-format",
        _set("spec.model.format", "ONNX"),
        'spec.model.format: Unsupported value: "ONNX"',
    ),
    (
        "pickle-without-opt-in",
        _set("spec.model.format", "Pickle"),
        "spec.model.allowUnsafeFormat: Forbidden: spec.model.format Joblib and Pickle",
    ),
    (
        "unknown-task",
        _set("spec.model.task", "Ranking"),
        'spec.model.task: Unsupported value: "Ranking"',
    ),
    ("zero-replicas", _set("spec.serving.replicas", 0), "spec.serving.replicas: Invalid value: 0"),
    (
        "unknown-version-mismatch-policy",
        _set("spec.serving.sklearnVersionMismatch", "Ignore"),
        'spec.serving.sklearnVersionMismatch: Unsupported value: "Ignore"',
    ),
    ("privileged-port", _set("spec.serving.port", 80), "spec.serving.port: Invalid value: 80"),
    (
        "env-value-and-valueFrom",
        _set("spec.serving.env", [{"name": "A", "value": "1", "valueFrom": {"fieldRef": {}}}]),
        "an env entry may set value or valueFrom, not both",
    ),
    (
        "reserved-pod-label",
        _set("spec.serving.podLabels", {"driftward.dev/model": "other"}),
        "spec.serving.podLabels may not set app.kubernetes.io/* or driftward.dev/* labels",
    ),
    (
        "unknown-action",
        _set("spec.policy.onDrift", "Panic"),
        'spec.policy.onDrift: Unsupported value: "Panic"',
    ),
    (
        "negative-window",
        _set("spec.monitoring.window.size", -5),
        "spec.monitoring.window.size: Invalid value: -5",
    ),
    (
        "min-samples-over-window",
        _set("spec.monitoring.window", {"size": 500, "minSamples": 800}),
        "spec.monitoring.window.minSamples must not exceed spec.monitoring.window.size",
    ),
    (
        "alpha-zero",
        _set("spec.monitoring.drift.alpha", 0),
        "spec.monitoring.drift.alpha: Invalid value: 0",
    ),
    (
        "alpha-too-big",
        _set("spec.monitoring.drift.alpha", 0.5),
        "spec.monitoring.drift.alpha: Invalid value: 0.5",
    ),
    (
        "drift-share-over-one",
        _set("spec.monitoring.drift.datasetDriftShare", 1.5),
        "spec.monitoring.drift.datasetDriftShare: Invalid value: 1.5",
    ),
    (
        "ks-threshold-over-one",
        _set("spec.monitoring.drift.numeric", {"method": "KolmogorovSmirnov", "threshold": 2}),
        "spec.monitoring.drift.numeric.threshold: Invalid value",
    ),
    (
        "unknown-correction",
        _set("spec.monitoring.drift.correction", "Sidak"),
        'spec.monitoring.drift.correction: Unsupported value: "Sidak"',
    ),
    (
        "categorical-feature-with-numeric-test",
        _set(
            "spec.monitoring.features",
            [{"name": "colour", "type": "Categorical", "method": "KolmogorovSmirnov"}],
        ),
        "spec.monitoring.features[0].method: Invalid value",
    ),
    (
        "unknown-feature-type",
        _set("spec.monitoring.features", [{"name": "text", "type": "Text"}]),
        'spec.monitoring.features[0].type: Unsupported value: "Text"',
    ),
    (
        "duplicate-feature",
        _set(
            "spec.monitoring.features",
            [{"name": "a", "type": "Numeric"}, {"name": "a", "type": "Numeric"}],
        ),
        "spec.monitoring.features[1]: Duplicate value",
    ),
    (
        "no-features",
        _set("spec.monitoring.features", []),
        "spec.monitoring.features: Invalid value",
    ),
    (
        "interval-without-unit",
        _set("spec.monitoring.interval", "30"),
        "spec.monitoring.interval: Invalid value",
    ),
    (
        "interval-too-short",
        _set("spec.monitoring.interval", "1s"),
        "spec.monitoring.interval must be between 5s and 24h",
    ),
    (
        "prometheus-source-without-url",
        _set("spec.monitoring.source", {"type": "Prometheus"}),
        "spec.monitoring.source.prometheus is required when spec.monitoring.source.type is "
        "Prometheus",
    ),
    (
        "prometheus-source-bad-url",
        _set("spec.monitoring.source", {"type": "Prometheus", "prometheus": {"url": "prom:9090"}}),
        "spec.monitoring.source.prometheus.url must start with http:// or https://",
    ),
    (
        "prometheus-source-bad-selector-label",
        _set(
            "spec.monitoring.source",
            {"type": "Prometheus", "prometheus": {"url": "http://p", "selector": {"a-b": "x"}}},
        ),
        "spec.monitoring.source.prometheus.selector keys must be Prometheus label names",
    ),
    (
        "unknown-source-type",
        _set("spec.monitoring.source", {"type": "Thanos"}),
        'spec.monitoring.source.type: Unsupported value: "Thanos"',
    ),
    (
        "missing-reference",
        _drop("spec.monitoring.reference"),
        "spec.monitoring.reference: Required value",
    ),
    (
        "reference-without-digest",
        _drop("spec.monitoring.reference.sha256"),
        "spec.monitoring.reference.sha256: Required value",
    ),
    (
        "regression-metric-on-classifier",
        _set("spec.monitoring.performance", {"metric": "RMSE", "baseline": 3.0}),
        "spec.monitoring.performance.metric must match spec.model.task",
    ),
    (
        "accuracy-baseline-over-one",
        _set("spec.monitoring.performance", {"metric": "Accuracy", "baseline": 93}),
        "spec.monitoring.performance.baseline must be at most 1",
    ),
    (
        "performance-without-baseline",
        _set("spec.monitoring.performance", {"metric": "Accuracy"}),
        "spec.monitoring.performance.baseline: Required value",
    ),
    (
        "min-labels-over-window",
        _both(
            _set("spec.monitoring.window", {"size": 500, "minSamples": 100}),
            _set(
                "spec.monitoring.performance",
                {"metric": "Accuracy", "baseline": 0.9, "minLabels": 900},
            ),
        ),
        "spec.monitoring.performance.minLabels must not exceed spec.monitoring.window.size",
    ),
    (
        "zero-breaches",
        _set("spec.policy.consecutiveBreaches", 0),
        "spec.policy.consecutiveBreaches: Invalid value: 0",
    ),
    (
        "cooldown-longer-than-rate-window",
        _set("spec.policy", {"cooldown": "48h", "rollbackRateWindow": "24h"}),
        "spec.policy.cooldown must not exceed spec.policy.rollbackRateWindow",
    ),
    (
        "history-limit-one",
        _set("spec.policy.historyLimit", 1),
        "spec.policy.historyLimit: Invalid value: 1",
    ),
    (
        "bad-cooldown",
        _set("spec.policy.cooldown", "ten minutes"),
        "spec.policy.cooldown: Invalid value",
    ),
    ("uppercase-name", _set("metadata.name", "Iris"), "metadata.name must be a DNS-1035 label"),
]


@pytest.mark.parametrize(
    ("mutate", "message"), [(m, t) for _, m, t in INVALID], ids=[i for i, _, _ in INVALID]
)
def test_invalid_manifest_is_rejected_naming_the_field(
    crd_installed: None,
    api_client: client.ApiClient,
    namespace: str,
    mutate: Mutation,
    message: str,
) -> None:
    body = copy.deepcopy(example("minimal"))
    mutate(body)
    with pytest.raises(ApiException) as caught:
        create(api_client, namespace, body)
    assert caught.value.status == 422, caught.value.body
    server_message = json.loads(caught.value.body)["message"]
    assert message in server_message, server_message
