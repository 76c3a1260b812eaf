"""The child builders as pure functions: ownership, restricted pods, config hash, translation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from driftward_operator import api
from driftward_operator.children import (
    build_children,
    build_config_map,
    build_deployment,
    build_monitor_config,
    build_service,
)
from driftward_operator.lifecycle import VersionRef
from driftward_serving.monitor.config import parse_monitor_config

MakeMM = Callable[..., dict[str, Any]]


def active_of(mm: dict[str, Any]) -> VersionRef:
    return VersionRef.from_spec(mm["spec"]["model"])


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_every_child_is_owned_and_labelled(make_mm: MakeMM) -> None:
    mm = make_mm()
    children = build_children(mm, active_of(mm))
    assert [c["kind"] for c in children] == ["ServiceAccount", "ConfigMap", "Service", "Deployment"]
    for child in children:
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": "driftward.dev/v1alpha1",
            "kind": "MonitoredModel",
            "name": "iris",
            "uid": "1f0e-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert child["metadata"]["namespace"] == "ml"
        assert child["metadata"]["labels"][api.LABEL_MODEL] == "iris"


def test_named_service_account_is_not_created(make_mm: MakeMM) -> None:
    mm = make_mm(serving__serviceAccountName="model-reader")
    kinds = [c["kind"] for c in build_children(mm, active_of(mm))]
    assert "ServiceAccount" not in kinds
    pod = build_deployment(mm, active_of(mm))["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "model-reader"


def test_pods_meet_restricted_pod_security(make_mm: MakeMM) -> None:
    mm = make_mm("full")
    pod = build_deployment(mm, active_of(mm))["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert [c["name"] for c in pod["containers"]] == ["model-server", "monitor"]
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["runAsNonRoot"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert container["readinessProbe"]["httpGet"]["path"]
        assert container["livenessProbe"]["httpGet"]["path"]
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_deployment_serves_the_active_version_not_the_spec(make_mm: MakeMM) -> None:
    mm = make_mm()
    stable = VersionRef(version="v0", uri="file:///models/v0.skops", sha256="0" * 64)
    deployment = build_deployment(mm, stable)
    server = deployment["spec"]["template"]["spec"]["containers"][0]
    env = env_of(server)
    assert env["DRIFTWARD_SERVING_MODEL_VERSION"] == "v0"
    assert env["DRIFTWARD_SERVING_ARTIFACT_URI"] == "file:///models/v0.skops"
    assert env["DRIFTWARD_SERVING_ARTIFACT_SHA256"] == "0" * 64
    assert env["DRIFTWARD_SERVING_MODEL_FORMAT"] == "skops"
    assert env["DRIFTWARD_SERVING_ALLOW_UNSAFE_FORMATS"] == "false"
    assert env["DRIFTWARD_SERVING_SKLEARN_VERSION_MISMATCH"] == "warn"
    assert deployment["metadata"]["annotations"][api.ANNOTATION_DIGEST] == "0" * 64
    assert deployment["spec"]["template"]["metadata"]["labels"][api.LABEL_VERSION] == "v0"
    assert deployment["spec"]["selector"] == {"matchLabels": {api.LABEL_MODEL: "iris"}}


def test_full_example_passes_scheduling_and_user_settings_through(make_mm: MakeMM) -> None:
    mm = make_mm("full")
    deployment = build_deployment(mm, active_of(mm))
    template = deployment["spec"]["template"]
    pod = template["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert "podAntiAffinity" in pod["affinity"]
    assert template["metadata"]["labels"]["team"] == "growth"
    assert (
        template["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"]
        == "true"
    )
    server, monitor = pod["containers"]
    assert server["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"memory": "512Mi"},
    }
    assert env_of(server)["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "model-store", "key": "secret-key"}
    }
    # The monitor fetches the reference from the same object store.
    assert env_of(monitor)["AWS_ENDPOINT_URL"] == "http://minio.storage.svc:9000"
    assert "AWS_ACCESS_KEY_ID" in env_of(monitor)


def test_config_change_changes_the_pod_template_hash(make_mm: MakeMM) -> None:
    mm = make_mm()
    before = build_deployment(mm, active_of(mm))["spec"]["template"]["metadata"]["annotations"]
    mm["spec"]["monitoring"]["drift"]["alpha"] = 0.05
    after = build_deployment(mm, active_of(mm))["spec"]["template"]["metadata"]["annotations"]
    assert before[api.ANNOTATION_CONFIG_HASH] != after[api.ANNOTATION_CONFIG_HASH]
    again = build_deployment(mm, active_of(mm))["spec"]["template"]["metadata"]["annotations"]
    assert again == after


def test_monitor_config_translates_the_crd_enums(make_mm: MakeMM) -> None:
    mm = make_mm("full")
    config = build_monitor_config(mm, active_of(mm))
    assert config["model"] == {"name": "churn", "version": "2026-11-01", "task": "classification"}
    assert config["reference"]["format"] == "parquet"
    assert config["drift"]["correction"] == "benjamini-hochberg"
    assert config["drift"]["numeric"] == {"method": "ks", "threshold": 0.05}
    assert config["drift"]["categorical"] == {"method": "chisquare", "threshold": 0.05}
    assert config["features"][1] == {
        "name": "monthly_charges",
        "type": "numeric",
        "method": "wasserstein",
        "threshold": 0.1,
    }
    assert config["performance"] == {
        "metric": "f1_macro",
        "baseline": 0.82,
        "maxDegradation": 0.04,
        "minLabels": 500,
    }
    stored = json.loads(build_config_map(mm, active_of(mm))["data"][api.MONITOR_CONFIG_KEY])
    assert stored == config


def test_minimal_monitor_config_uses_schema_defaults(make_mm: MakeMM) -> None:
    mm = make_mm()
    config = build_monitor_config(mm, active_of(mm))
    assert config["window"] == {"size": 5000, "minSamples": 1000}
    assert config["drift"]["alpha"] == 0.01
    assert config["drift"]["correction"] == "holm"
    assert "performance" not in config


def test_service_exposes_inference_metrics_and_monitor(make_mm: MakeMM) -> None:
    service = build_service(make_mm())
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports == {"http": 8080, "metrics": 9090, "monitor": 8081, "monitor-metrics": 9091}
    assert service["spec"]["selector"] == {api.LABEL_MODEL: "iris"}


@pytest.mark.parametrize("example", ["minimal", "full"])
def test_monitor_config_is_one_the_monitor_accepts(
    make_mm: Callable[..., dict[str, Any]], example: str
) -> None:
    """The operator's ConfigMap and the monitor's parser agree on docs/contracts.md."""
    mm = make_mm(example)
    mm["spec"]["monitoring"]["reference"]["targetColumn"] = "label"
    active = VersionRef.from_spec(mm["spec"]["model"])
    config = parse_monitor_config(build_monitor_config(mm, active))
    assert config.model.version == mm["spec"]["model"]["version"]
    assert config.reference.target_column == "label"
    assert [f.name for f in config.features] == [
        f["name"] for f in mm["spec"]["monitoring"]["features"]
    ]


def test_the_version_mismatch_policy_reaches_the_model_server(make_mm: MakeMM) -> None:
    mm = make_mm()
    mm["spec"].setdefault("serving", {})["sklearnVersionMismatch"] = "Refuse"
    server = build_deployment(mm, active_of(mm))["spec"]["template"]["spec"]["containers"][0]
    assert env_of(server)["DRIFTWARD_SERVING_SKLEARN_VERSION_MISMATCH"] == "refuse"
