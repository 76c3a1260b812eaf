"""Smoke tests proving the local control plane is a real Kubernetes API server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kopf.testing import KopfRunner
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import Testbed

OPERATOR = Path(__file__).parent / "operators" / "trivial_operator.py"


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_cluster_has_two_ready_fake_nodes(api_client: client.ApiClient) -> None:
    nodes = client.CoreV1Api(api_client).list_node().items
    ready = [
        n.metadata.name
        for n in nodes
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
    ]
    assert len(ready) >= 2, f"expected at least two Ready nodes, got {ready}"


def test_server_reports_pinned_version(api_client: client.ApiClient, testbed: Testbed) -> None:
    versions = dict(
        line.split("=", 1)
        for line in (Path(__file__).parents[2] / "hack/testbed/versions.env")
        .read_text()
        .splitlines()
        if line and not line.startswith("#")
    )
    info = client.VersionApi(api_client).get_code()
    assert info.git_version == versions["KUBERNETES_VERSION"]


def test_deployment_becomes_available_with_fake_pods(
    api_client: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    labels = {"app": "smoke"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="smoke"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="c", image="example.invalid/none:1")]
                ),
            ),
        ),
    )
    apps.create_namespaced_deployment(namespace, deployment)

    def available() -> bool:
        status = apps.read_namespaced_deployment_status("smoke", namespace).status
        return any(
            c.type == "Available" and c.status == "True" for c in status.conditions or []
        ) and (status.available_replicas == 2)

    _wait_for(available, 90, "Deployment smoke to become Available with 2 replicas")
    pods = client.CoreV1Api(api_client).list_namespaced_pod(namespace, label_selector="app=smoke")
    assert len(pods.items) == 2
    assert all(p.status.phase == "Running" and p.status.pod_ip for p in pods.items)
    assert {p.spec.node_name for p in pods.items} <= {
        n.metadata.name for n in client.CoreV1Api(api_client).list_node().items
    }


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.driftward.dev"},
    "spec": {
        "group": "smoke.driftward.dev",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                                    "colour": {"type": "string", "enum": ["red", "blue"]},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "!has(self.colour) || self.size > 2",
                                        "message": "a coloured widget needs size > 2",
                                    }
                                ],
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_structural_crd_rejects_invalid_objects(
    api_client: client.ApiClient, namespace: str
) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    try:
        ext.create_custom_resource_definition(WIDGET_CRD)
    except ApiException as exc:
        if exc.status != 409:
            raise

    def established() -> bool:
        crd = ext.read_custom_resource_definition("widgets.smoke.driftward.dev")
        return any(
            c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
        )

    _wait_for(established, 30, "the Widget CRD to be Established")
    custom = client.CustomObjectsApi(api_client)

    def create(name: str, spec: dict[str, object]) -> None:
        body = {"apiVersion": "smoke.driftward.dev/v1", "kind": "Widget"}
        body |= {"metadata": {"name": name}, "spec": spec}
        custom.create_namespaced_custom_object(
            "smoke.driftward.dev", "v1", namespace, "widgets", body
        )

    create("good", {"size": 3, "colour": "red"})
    cases = [
        (
            {"size": 11},
            "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
        ),
        ({"size": 3, "colour": "green"}, 'spec.colour: Unsupported value: "green"'),
        ({}, "spec.size: Required value"),
        ({"size": 2, "colour": "blue"}, "a coloured widget needs size > 2"),
    ]
    for i, (spec, message) in enumerate(cases):
        with pytest.raises(ApiException) as caught:
            create(f"bad-{i}", spec)
        assert caught.value.status == 422, caught.value.body
        assert message in json.loads(caught.value.body)["message"], caught.value.body


def test_kopf_runner_sees_an_event(
    kubeconfig_env: Testbed,
    api_client: client.ApiClient,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = client.CoreV1Api(api_client)
    args = ["run", "--standalone", "--namespace", namespace, "--verbose", str(OPERATOR)]
    with KopfRunner(args, timeout=60) as runner:
        core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="ping", labels={"driftward.dev/smoke": "kopf"})
            ),
        )

        def marked() -> bool:
            annotations = core.read_namespaced_config_map("ping", namespace).metadata.annotations
            return (annotations or {}).get("driftward.dev/seen-by") == "smoke-operator"

        _wait_for(marked, 45, "the kopf operator to annotate ConfigMap ping")
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None
    assert any("smoke-operator saw configmap ping" in r.getMessage() for r in caplog.records)
