"""The Helm chart on the real local control plane: install, upgrade, uninstall, and its RBAC.

The chart's operator pods are fake (kwok runs no containers), so the operator
runs here as a local process with the credentials of the chart's own
ServiceAccount (a TokenRequest token) and exactly the environment the chart's
Deployment gives it. It reconciles crds/examples/minimal.yaml to a Deployment
with those permissions and no others, and `kubectl auth can-i` shows what the
account cannot do. The sample's pods get a nodeSelector no node has, so they
never get an address: in this cluster pod IPs are not loopback addresses, and
the operator must not try to reach them.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from tests.conftest import ROOT, Testbed
from tests.integration.helpers import temporary_namespace, wait_for
from tests.integration.test_rbac import sa_kubeconfig
from tests.unit.argocd.luavm import ArgoLua
from tests.unit.chart.render import CHART

GROUP, VERSION, PLURAL = "driftward.dev", "v1alpha1", "monitoredmodels"
EXAMPLE = ROOT / "crds" / "examples" / "minimal.yaml"
ARGOCD = CHART / "argocd" / "driftward.dev" / "MonitoredModel"
BIN = Path(sys.executable).parent


class Release:
    """One Helm release of the chart in its own namespace."""

    def __init__(self, testbed: Testbed, api: client.ApiClient, namespace: str) -> None:
        self.testbed = testbed
        self.api = api
        self.namespace = namespace
        self.name = f"dw-{uuid.uuid4().hex[:6]}"
        self.fullname = f"{self.name}-driftward"

    def helm(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            [
                str(self.testbed.bin_dir / "helm"),
                "--kubeconfig",
                str(self.testbed.kubeconfig),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def install(self, command: str, values: dict[str, Any], tmp: Path) -> str:
        path = tmp / f"values-{uuid.uuid4().hex[:4]}.yaml"
        path.write_text(yaml.safe_dump(values))
        return self.helm(
            command,
            self.name,
            str(CHART),
            "--namespace",
            self.namespace,
            "-f",
            str(path),
            "--wait",
            "--timeout",
            "180s",
        )

    def deployment(self) -> Any:
        return client.AppsV1Api(self.api).read_namespaced_deployment(self.fullname, self.namespace)

    def cluster_role_name(self) -> str:
        return f"{self.fullname}-{self.namespace}"


@pytest.fixture
def release(
    testbed: Testbed, crd_installed: None, api_client: client.ApiClient
) -> Iterator[Release]:
    """A release namespace; the release is uninstalled afterwards if a test left it."""
    with temporary_namespace(api_client) as namespace:
        rel = Release(testbed, api_client, namespace)
        try:
            yield rel
        finally:
            rel.helm("uninstall", rel.name, "--namespace", namespace, "--wait", check=False)


@pytest.fixture
def model_namespace(api_client: client.ApiClient) -> Iterator[str]:
    """The namespace the sample MonitoredModel goes into."""
    with temporary_namespace(api_client) as name:
        yield name


@pytest.fixture
def other_namespace(api_client: client.ApiClient) -> Iterator[str]:
    """A namespace a namespaced operator must not reach."""
    with temporary_namespace(api_client) as name:
        yield name


def _gone(read: Any) -> bool:
    try:
        read()
    except client.ApiException as exc:
        return exc.status == 404
    return False


def test_install_upgrade_and_uninstall(release: Release, tmp_path: Path) -> None:
    rbac = client.RbacAuthorizationV1Api(release.api)
    custom = client.CustomObjectsApi(release.api)
    notes = release.install("install", {}, tmp_path)
    assert "cluster-wide mode" in notes
    assert release.deployment().status.available_replicas == 2
    role = rbac.read_cluster_role(release.cluster_role_name())
    assert len(role.rules) > 5
    custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", release.fullname)
    client.PolicyV1Api(release.api).read_namespaced_pod_disruption_budget(
        release.fullname, release.namespace
    )

    release.install("upgrade", {"operator": {"replicas": 3, "resyncSeconds": 30}}, tmp_path)
    deployment = release.deployment()
    assert deployment.spec.replicas == 3
    assert deployment.status.available_replicas == 3
    env = {e.name: e.value for e in deployment.spec.template.spec.containers[0].env}
    assert env["DRIFTWARD_OPERATOR_RESYNC_SECONDS"] == "30"
    history = json.loads(
        release.helm("history", release.name, "-n", release.namespace, "-o", "json")
    )
    assert [h["revision"] for h in history] == [1, 2]

    # Switch to namespaced mode: a Role and a KopfPeering in the watched
    # namespace replace the cluster-wide rules and the ClusterKopfPeering.
    release.install("upgrade", {"operator": {"watchNamespaces": [release.namespace]}}, tmp_path)
    assert len(rbac.read_cluster_role(release.cluster_role_name()).rules) == 3
    rbac.read_namespaced_role(release.fullname, release.namespace)
    custom.get_namespaced_custom_object(
        "kopf.dev", "v1", release.namespace, "kopfpeerings", release.fullname
    )
    wait_for(
        lambda: _gone(
            lambda: custom.get_cluster_custom_object(
                "kopf.dev", "v1", "clusterkopfpeerings", release.fullname
            )
        ),
        60,
        "the ClusterKopfPeering to go away in namespaced mode",
    )

    release.helm("uninstall", release.name, "--namespace", release.namespace, "--wait")
    wait_for(lambda: _gone(release.deployment), 60, "the operator Deployment to be deleted")
    assert _gone(lambda: rbac.read_cluster_role(release.cluster_role_name()))
    assert _gone(lambda: rbac.read_namespaced_role(release.fullname, release.namespace))
    # Helm never deletes CRDs: the models they hold outlive the operator.
    client.ApiextensionsV1Api(release.api).read_custom_resource_definition(
        "monitoredmodels.driftward.dev"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sample(namespace: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    body["metadata"]["namespace"] = namespace
    # No node has this label, so the serving pods stay Pending without an IP
    # (see the module docstring).
    body["spec"]["serving"] = {"nodeSelector": {"driftward.dev/test": "no-such-node"}}
    return body


def _can(testbed: Testbed, kubeconfig: Path, *args: str) -> bool:
    answer = testbed.kubectl("--kubeconfig", str(kubeconfig), "auth", "can-i", *args, check=False)
    return answer.strip() == "yes"


def _check_least_privilege(
    testbed: Testbed, kubeconfig: Path, ns: str, *, release_ns: str, other: str, wide: bool
) -> None:
    """What the chart's account may and may not do (`kubectl auth can-i`)."""
    assert _can(testbed, kubeconfig, "patch", "monitoredmodels/status", "-n", ns)
    assert _can(testbed, kubeconfig, "create", "deployments", "-n", ns)
    for denied in (
        ("get", "secrets", "-n", ns),
        ("list", "secrets", "-n", release_ns),
        ("delete", "deployments", "-n", ns),
        ("update", "monitoredmodels", "-n", ns),
        ("delete", "monitoredmodels", "-n", ns),
        ("create", "pods", "-n", ns),
        ("create", "clusterroles"),
        ("create", "rolebindings", "-n", ns),
        ("impersonate", "serviceaccounts", "-n", ns),
        ("create", "customresourcedefinitions"),
    ):
        assert not _can(testbed, kubeconfig, *denied), f"the account can {' '.join(denied)}"
    assert _can(testbed, kubeconfig, "create", "deployments", "-n", other) is wide
    assert _can(testbed, kubeconfig, "list", "monitoredmodels", "-n", other) is wide


@contextlib.contextmanager
def _operator(release: Release, kubeconfig: Path, pod_id: str, log: Path) -> Iterator[int]:
    """Run driftward-operator with the chart's environment and the account's token."""
    container = release.deployment().spec.template.spec.containers[0]
    assert container.args == ["driftward-operator"]
    env = {e.name: e.value for e in container.env if e.value is not None}
    http_port = _free_port()
    env.update(
        KUBECONFIG=str(kubeconfig),
        POD_ID=pod_id,
        DRIFTWARD_OPERATOR_LIVENESS_PORT="0",
        DRIFTWARD_OPERATOR_HTTP_HOST="127.0.0.1",
        DRIFTWARD_OPERATOR_HTTP_PORT=str(http_port),
        DRIFTWARD_OPERATOR_RESYNC_SECONDS="1",
    )
    proc = subprocess.Popen(
        [str(BIN / container.args[0])],
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield http_port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    text = log.read_text()
    assert "Forbidden" not in text, text[-3000:]
    assert " 403" not in text, text[-3000:]


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_operator_with_the_charts_account_reconciles_the_example_and_no_more(
    mode: str,
    release: Release,
    model_namespace: str,
    other_namespace: str,
    tmp_path: Path,
) -> None:
    testbed, ns, wide = release.testbed, model_namespace, mode == "cluster-wide"
    values: dict[str, Any] = {"operator": {"replicas": 1}}
    if not wide:
        values["operator"]["watchNamespaces"] = [ns]
    release.install("install", values, tmp_path)
    account = release.deployment().spec.template.spec.service_account_name
    kubeconfig = sa_kubeconfig(testbed, release.namespace, account, tmp_path / "sa.kubeconfig")
    _check_least_privilege(
        testbed, kubeconfig, ns, release_ns=release.namespace, other=other_namespace, wide=wide
    )

    custom = client.CustomObjectsApi(release.api)
    apps = client.AppsV1Api(release.api)

    def live() -> dict[str, Any]:
        found: dict[str, Any] = custom.get_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "iris"
        )
        return found

    pod_id = f"local-{mode}"
    with _operator(release, kubeconfig, pod_id, tmp_path / "operator.log") as http_port:
        testbed.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(_sample(ns)))
        wait_for(
            lambda: not _gone(lambda: apps.read_namespaced_deployment("iris", ns)),
            60,
            "the operator, as the chart's ServiceAccount, to create the Deployment",
        )
        wait_for(
            lambda: live().get("status", {}).get("activeVersion") == "v1",
            60,
            "status.activeVersion v1",
        )
        # The Argo CD health check on the real status.
        health = ArgoLua().health(live(), (ARGOCD / "health.lua").read_text())
        assert health["status"] == "Progressing", health

        # An Argo CD action's annotation reaches the operator, which records it.
        promote = (ARGOCD / "actions" / "promote" / "action.lua").read_text()
        annotations = ArgoLua().action(live(), promote)["metadata"]["annotations"]
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "iris", {"metadata": {"annotations": annotations}}
        )
        wait_for(
            lambda: (
                live().get("status", {}).get("requests", {}).get("promote")
                == annotations["driftward.dev/promote"]
            ),
            60,
            "the operator to handle the promote request",
        )

        metrics = httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=10)
        assert "driftward_operator_rollbacks" in metrics.text
        analysis = httpx.get(f"http://127.0.0.1:{http_port}/v1/analysis/{ns}/iris", timeout=10)
        assert analysis.status_code == 200
        assert analysis.json()["healthy"] is False

        if wide:
            peering = custom.get_cluster_custom_object(
                "kopf.dev", "v1", "clusterkopfpeerings", release.fullname
            )
        else:
            peering = custom.get_namespaced_custom_object(
                "kopf.dev", "v1", ns, "kopfpeerings", release.fullname
            )
        assert pod_id in peering.get("status", {}), peering
    testbed.kubectl("delete", "mm", "iris", "-n", ns, "--wait=false", check=False)
