"""The operator against the real control plane, run with kopf's KopfRunner.

Covers the reconcile's promises: children with owner references, Ready once the
Deployment is Available on fake nodes, version changes rolling the Deployment
and recorded in history, garbage collection on delete, convergence after a
restart mid-reconcile, and never a write to the spec.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path

import kopf
import pytest
import yaml
from kopf.testing import KopfRunner

from driftward_operator.children import build_children
from driftward_operator.handlers import build_api_client, register
from driftward_operator.kube import KubeClient
from driftward_operator.lifecycle import VersionRef
from driftward_operator.settings import OperatorSettings
from tests.conftest import Testbed
from tests.integration.helpers import EXAMPLES, GROUP, PLURAL, VERSION, Cluster, model, wait_for


@pytest.fixture
def operator(kubeconfig_env: Testbed, cluster: Cluster) -> Iterator[KopfRunner]:
    """The driftward operator, watching only this test's namespace."""
    with run_operator(cluster.ns) as runner:
        yield runner
    assert runner.exception is None, runner.exception
    assert runner.exit_code == 0


def run_operator(namespace: str) -> KopfRunner:
    registry = kopf.OperatorRegistry()
    # kwok's pod IPs are not on loopback in this cluster: never send traffic to them.
    settings = OperatorSettings(
        resync_seconds=1, standalone=True, namespaces=[namespace], evaluate_verdicts=False
    )
    register(registry, settings)
    return KopfRunner(
        ["run", "--standalone", "--namespace", namespace], registry=registry, timeout=60
    )


def test_create_reconciles_children_then_ready_then_stable(
    cluster: Cluster, operator: KopfRunner
) -> None:
    created = cluster.create(model("iris"))
    uid = created["metadata"]["uid"]

    wait_for(lambda: cluster.condition("iris", "Ready").get("status") == "True", 60, "Ready=True")
    mm = wait_for(
        lambda: (m := cluster.get("iris")).get("status", {}).get("stableVersion") == "v1" and m,
        60,
        "v1 to be promoted to stable",
    )
    status = mm["status"]
    assert status["phase"] == "Healthy"
    assert status["activeVersion"] == "v1"
    assert status["observedGeneration"] == mm["metadata"]["generation"]
    (entry,) = status["history"]
    assert entry["outcome"] == "Stable"
    assert entry["deployedAt"] <= entry["readyAt"] <= entry["promotedAt"]

    for kind, read in [
        ("Deployment", lambda: cluster.apps.read_namespaced_deployment("iris", cluster.ns)),
        ("Service", lambda: cluster.core.read_namespaced_service("iris", cluster.ns)),
        ("ConfigMap", lambda: cluster.core.read_namespaced_config_map("iris-monitor", cluster.ns)),
        (
            "ServiceAccount",
            lambda: cluster.core.read_namespaced_service_account("iris-serving", cluster.ns),
        ),
    ]:
        owners = read().metadata.owner_references
        assert [(o.kind, o.uid, o.controller) for o in owners] == [("MonitoredModel", uid, True)], (
            kind
        )
    deployment = cluster.deployment("iris")
    assert deployment.status.available_replicas == 1
    managers = {m.manager for m in deployment.metadata.managed_fields if m.operation == "Apply"}
    assert managers == {"driftward-operator"}

    reasons = [e.reason for e in cluster.events("iris")]
    assert reasons.count("CandidateDeployed") == 1
    assert reasons.count("Promoted") == 1

    # The operator never writes the spec or the metadata that Git owns.
    assert mm["spec"] == created["spec"]
    assert mm["metadata"]["generation"] == created["metadata"]["generation"]
    assert mm["metadata"].get("annotations", {}) == created["metadata"].get("annotations", {})
    # kopf's timers need a finalizer so they stop cleanly on deletion; it is the only
    # metadata the operator adds, and it is not part of what Git declares.
    assert mm["metadata"].get("finalizers", []) in ([], ["driftward.dev/kopf-finalizer"])


def test_version_change_rolls_the_deployment_and_records_history(
    cluster: Cluster, operator: KopfRunner
) -> None:
    cluster.create(model("iris"))
    wait_for(
        lambda: cluster.get("iris").get("status", {}).get("stableVersion") == "v1", 60, "v1 stable"
    )
    before = cluster.get("iris")

    cluster.patch_spec(
        "iris", {"model": {"version": "v2", "sha256": "2" * 64, "uri": "file:///models/v2.skops"}}
    )

    def serving_v2() -> bool:
        template = cluster.deployment("iris").spec.template
        env = {e.name: e.value for e in template.spec.containers[0].env}
        return (
            env["DRIFTWARD_SERVING_MODEL_VERSION"] == "v2"
            and env["DRIFTWARD_SERVING_ARTIFACT_SHA256"] == "2" * 64
        )

    wait_for(serving_v2, 30, "the Deployment to serve v2")
    mm = wait_for(
        lambda: (m := cluster.get("iris"))["status"].get("stableVersion") == "v2" and m,
        60,
        "v2 stable",
    )
    outcomes = [(e["version"], e["outcome"]) for e in mm["status"]["history"]]
    assert outcomes == [("v2", "Stable"), ("v1", "Superseded")]
    assert (
        mm["metadata"]["generation"] == before["metadata"]["generation"] + 1
    )  # only the user's patch
    reasons = [e.reason for e in cluster.events("iris")]
    assert reasons.count("CandidateDeployed") == 2
    assert reasons.count("Promoted") == 2


def test_delete_garbage_collects_every_child(cluster: Cluster, operator: KopfRunner) -> None:
    cluster.create(model("iris"))
    wait_for(lambda: cluster.condition("iris", "Ready").get("status") == "True", 60, "Ready=True")
    cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, cluster.ns, PLURAL, "iris")
    selector = "driftward.dev/model=iris"

    def all_gone() -> bool:
        return not any(
            [
                cluster.apps.list_namespaced_deployment(cluster.ns, label_selector=selector).items,
                cluster.core.list_namespaced_service(cluster.ns, label_selector=selector).items,
                cluster.core.list_namespaced_config_map(cluster.ns, label_selector=selector).items,
                cluster.core.list_namespaced_service_account(
                    cluster.ns, label_selector=selector
                ).items,
                cluster.core.list_namespaced_pod(cluster.ns, label_selector=selector).items,
            ]
        )

    wait_for(all_gone, 90, "the garbage collector to delete every child")


def test_restart_mid_reconcile_converges(kubeconfig_env: Testbed, cluster: Cluster) -> None:
    created = cluster.create(model("iris"))
    # A previous operator died mid-reconcile: it applied the ConfigMap and the
    # Deployment, but not the Service or ServiceAccount, and wrote no status.
    kube = KubeClient(build_api_client())
    for child in build_children(created, VersionRef.from_spec(created["spec"]["model"])):
        if child["kind"] in {"ConfigMap", "Deployment"}:
            kube.apply(child)
    template_before = cluster.deployment("iris").spec.template.to_dict()

    with run_operator(cluster.ns) as runner:
        mm = wait_for(
            lambda: (m := cluster.get("iris")).get("status", {}).get("stableVersion") == "v1" and m,
            60,
            "convergence to stable v1",
        )
    assert runner.exception is None

    assert len(mm["status"]["history"]) == 1
    assert cluster.core.read_namespaced_service("iris", cluster.ns).metadata.owner_references
    assert cluster.core.read_namespaced_service_account("iris-serving", cluster.ns)
    # The restarted operator built the same pod template: no second rollout.
    assert cluster.deployment("iris").spec.template.to_dict() == template_before
    replica_sets = cluster.apps.list_namespaced_replica_set(
        cluster.ns, label_selector="driftward.dev/model=iris"
    )
    assert len(replica_sets.items) == 1
    assert [e.reason for e in cluster.events("iris")].count("CandidateDeployed") == 1

    # A second restart changes nothing at all.
    resource_version = mm["metadata"]["resourceVersion"]
    with run_operator(cluster.ns):
        time.sleep(4)
    after = cluster.get("iris")
    assert after["metadata"]["resourceVersion"] == resource_version, (
        "an idle restart wrote to the object"
    )


def test_full_example_reconciles(cluster: Cluster, operator: KopfRunner) -> None:
    body = copy.deepcopy(yaml.safe_load((EXAMPLES / "full.yaml").read_text()))
    body["spec"]["serving"]["nodeSelector"] = {"type": "kwok"}  # the fake nodes' label
    body["spec"]["serving"]["tolerations"] = []
    cluster.create(body)
    wait_for(lambda: cluster.condition("churn", "Ready").get("status") == "True", 60, "Ready=True")
    deployment = cluster.deployment("churn")
    assert deployment.spec.replicas == 2
    assert deployment.status.available_replicas == 2


def test_example_files_exist() -> None:
    assert Path(EXAMPLES / "minimal.yaml").is_file()


def test_spec_the_schema_cannot_catch_gives_a_condition_not_a_crash(
    cluster: Cluster, operator: KopfRunner
) -> None:
    body = model("iris")
    # valueFrom is passed through to the pod as written; the CRD cannot know this
    # source is empty, but the API server refuses the Deployment built from it.
    body["spec"]["serving"] = {"env": [{"name": "TOKEN", "valueFrom": {}}]}
    cluster.create(body)
    ready = wait_for(
        lambda: (c := cluster.condition("iris", "Ready")).get("reason") == "ChildRejected" and c,
        60,
        "Ready=False with reason ChildRejected",
    )
    assert ready["status"] == "False"
    assert "Deployment/iris" in ready["message"]
    assert "valueFrom" in ready["message"]
    assert cluster.get("iris")["status"]["phase"] == "Failed"

    # Fixing the spec recovers without a restart.
    cluster.patch_spec("iris", {"serving": {"env": [{"name": "TOKEN", "value": "x"}]}})
    wait_for(
        lambda: cluster.condition("iris", "Ready").get("status") == "True", 60, "recovery to Ready"
    )
