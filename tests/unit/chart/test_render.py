"""`helm template` output: valid against Kubernetes' schemas, least privilege, restricted pods.

Built-in kinds are validated offline with kubernetes-validate (the Kubernetes
OpenAPI schemas of the testbed's version, bundled in the package, strict: an
unknown field fails). kopf's peering objects are validated against their CRD's
schema in crds/. The Prometheus Operator's kinds have no schema here, so they
are skipped by kind below, and tests/unit/chart/test_monitoring.py checks them
instead (promtool for the rules, the serving pods' port names for the PodMonitor).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from driftward_operator.settings import OperatorSettings
from tests.unit.chart.render import CHART, ROOT, Manifest, find, kube_version, only, render

RULES = yaml.safe_load((CHART / "files" / "operator-rbac.yaml").read_text())
SKIPPED_KINDS = {
    "ServiceMonitor": "monitoring.coreos.com CRD schema not available offline; test_monitoring.py",
    "PodMonitor": "monitoring.coreos.com CRD schema not available offline; test_monitoring.py",
    "PrometheusRule": "monitoring.coreos.com CRD schema not available offline; promtool checks it",
}
ALL_ON = {
    "monitoring": {
        "serviceMonitor": {"enabled": True},
        "podMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    }
}
NAMESPACED = {"operator": {"watchNamespaces": ["ml-prod", "ml-staging"]}}
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "everything-on": ALL_ON,
    "namespaced": {**NAMESPACED, **ALL_ON},
    "standalone": {"operator": {"replicas": 1, "peering": {"enabled": False}}},
    "bring-your-own-account": {
        "serviceAccount": {"create": False, "name": "ops"},
        "rbac": {"create": False},
    },
}


def _peering_schemas() -> dict[str, dict[str, Any]]:
    schemas = {}
    for crd in yaml.safe_load_all((ROOT / "crds" / "kopf.dev_peerings.yaml").read_text()):
        schemas[crd["spec"]["names"]["kind"]] = crd["spec"]["versions"][0]["schema"][
            "openAPIV3Schema"
        ]
    return schemas


@pytest.mark.parametrize("case", sorted(VALUE_SETS))
def test_every_rendered_object_is_valid_for_the_pinned_kubernetes(helm: Path, case: str) -> None:
    docs = render(helm, VALUE_SETS[case])
    peering = _peering_schemas()
    checked = 0
    for doc in docs:
        kind = doc["kind"]
        if kind in SKIPPED_KINDS:
            continue
        if kind in peering:
            assert doc["apiVersion"] == "kopf.dev/v1"
            jsonschema.validate(doc, peering[kind])
        else:
            try:
                kubernetes_validate.validate(doc, kube_version(), strict=True)
            except kubernetes_validate.ValidationError as exc:
                raise AssertionError(
                    f"{kind}/{doc['metadata']['name']} is invalid: {exc.message}"
                ) from exc
        checked += 1
    assert checked >= 2


def test_validation_catches_an_invalid_object() -> None:
    # Proof that the validator above can fail: a misspelt field in a Deployment.
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": 1, "selectr": {}, "template": {}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kube_version(), strict=True)


def _operator_container(docs: list[Manifest]) -> dict[str, Any]:
    deployment = only(docs, "Deployment")
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_operator_runs_two_peered_replicas_by_default(helm: Path) -> None:
    docs = render(helm)
    assert only(docs, "Deployment")["spec"]["replicas"] == 2
    env = {e["name"]: e for e in _operator_container(docs)["env"]}
    assert env["DRIFTWARD_OPERATOR_STANDALONE"]["value"] == "false"
    assert env["DRIFTWARD_OPERATOR_PEERING_NAME"]["value"] == "driftward"
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["DRIFTWARD_OPERATOR_NAMESPACES"]["value"] == "[]"
    assert only(docs, "ClusterKopfPeering")["metadata"]["name"] == "driftward"
    assert only(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_every_operator_variable_the_chart_sets_is_a_setting(helm: Path) -> None:
    for case in VALUE_SETS.values():
        env = _operator_container(render(helm, case))["env"]
        names = {e["name"] for e in env if e["name"].startswith("DRIFTWARD_OPERATOR_")}
        known = {f"DRIFTWARD_OPERATOR_{f.upper()}" for f in OperatorSettings.model_fields}
        assert names <= known, f"the operator does not read {sorted(names - known)}"


def test_chart_environment_loads_as_valid_operator_settings(
    helm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _operator_container(render(helm, NAMESPACED))["env"]
    for item in env:
        if "value" in item:
            monkeypatch.setenv(item["name"], item["value"])
    settings = OperatorSettings()
    assert settings.namespaces == ["ml-prod", "ml-staging"]
    assert settings.peering_name == "driftward"
    assert not settings.standalone
    assert settings.liveness_port == 8080


def test_probes_use_kopf_liveness_endpoint(helm: Path) -> None:
    container = _operator_container(render(helm))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert str(ports["healthz"]) == env["DRIFTWARD_OPERATOR_LIVENESS_PORT"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}


def test_pods_meet_restricted_pod_security(helm: Path) -> None:
    pod = only(render(helm), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc["readOnlyRootFilesystem"] is True
        assert "add" not in sc["capabilities"]
    assert not any(v.get("hostPath") for v in pod["volumes"])


def test_cluster_wide_mode_grants_the_declared_rules_cluster_wide(helm: Path) -> None:
    docs = render(helm)
    assert find(docs, "Role") == []
    role = only(docs, "ClusterRole")
    assert role["rules"] == RULES["namespaced"] + RULES["cluster"]
    binding = only(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "driftward", "namespace": "driftward-system"}
    ]


def test_namespaced_mode_grants_namespace_rules_only_in_watched_namespaces(helm: Path) -> None:
    docs = render(helm, NAMESPACED)
    assert only(docs, "ClusterRole")["rules"] == RULES["cluster"]
    roles = find(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["ml-prod", "ml-staging"]
    assert all(r["rules"] == RULES["namespaced"] for r in roles)
    bindings = find(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["ml-prod", "ml-staging"]
    peerings = find(docs, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["ml-prod", "ml-staging"]
    assert find(docs, "ClusterKopfPeering") == []


def test_no_rule_reaches_secrets_or_uses_wildcards(helm: Path) -> None:
    for case in ({}, NAMESPACED):
        for doc in render(helm, case):
            for rule in doc.get("rules", []) if doc["kind"] in ("Role", "ClusterRole") else []:
                assert "secrets" not in rule["resources"]
                assert "*" not in rule["resources"] + rule["verbs"] + rule["apiGroups"]
                assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(
                    rule["verbs"]
                )


def test_cluster_scoped_names_include_the_release_namespace(helm: Path) -> None:
    # Two releases in different namespaces must not fight over one ClusterRole.
    a = only(render(helm, namespace="team-a"), "ClusterRole")["metadata"]["name"]
    b = only(render(helm, namespace="team-b"), "ClusterRole")["metadata"]["name"]
    assert a != b


def test_standalone_mode_renders_no_peering(helm: Path) -> None:
    docs = render(helm, VALUE_SETS["standalone"])
    assert find(docs, "ClusterKopfPeering") == []
    assert find(docs, "KopfPeering") == []
    env = {e["name"]: e.get("value") for e in _operator_container(docs)["env"]}
    assert env["DRIFTWARD_OPERATOR_STANDALONE"] == "true"
    assert "DRIFTWARD_OPERATOR_PEERING_NAME" not in env
    assert find(docs, "PodDisruptionBudget") == []


def test_optional_objects_are_off_by_default(helm: Path) -> None:
    kinds = {d["kind"] for d in render(helm)}
    assert not kinds & {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"}


def test_chart_image_runs_a_console_script_of_the_package(helm: Path) -> None:
    container = _operator_container(render(helm))
    assert "command" not in container
    assert container["args"] == ["driftward-operator"]
    assert container["image"] == "ghcr.io/driftward/driftward:0.1.0"


def test_operator_image_is_the_serving_image_the_crd_defaults_to(helm: Path) -> None:
    # One image for all three processes: the chart's operator and the models'
    # default serving image must be the same release.
    crd = yaml.safe_load((ROOT / "crds" / "driftward.dev_monitoredmodels.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    default = spec["properties"]["serving"]["properties"]["image"]["default"]
    assert _operator_container(render(helm))["image"] == default
