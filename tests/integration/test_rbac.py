"""The operator runs with exactly the RBAC rules the chart grants, as its own ServiceAccount."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.conftest import ROOT, Testbed
from tests.integration.helpers import Cluster, model, wait_for

RULES = yaml.safe_load((ROOT / "charts" / "driftward" / "files" / "operator-rbac.yaml").read_text())


def sa_kubeconfig(testbed: Testbed, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as a ServiceAccount through a TokenRequest."""
    token = testbed.kubectl("-n", namespace, "create", "token", account, "--duration=1h").strip()
    admin = yaml.safe_load(testbed.kubeconfig.read_text())
    cluster_entry = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster_entry],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [
            {"name": "sa", "context": {"cluster": cluster_entry["name"], "user": account}}
        ],
        "current-context": "sa",
    }
    # kubeconfig paths to certificates are relative to the admin kubeconfig's folder.
    ca = cluster_entry["cluster"].get("certificate-authority")
    if ca and not os.path.isabs(ca):
        cluster_entry["cluster"]["certificate-authority"] = str(testbed.kubeconfig.parent / ca)
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def operator_account(testbed: Testbed, cluster: Cluster, tmp_path: Path) -> Iterator[Path]:
    rbac = client.RbacAuthorizationV1Api(cluster.custom.api_client)
    ns, name = cluster.ns, "driftward-operator"
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": name}})
    role: dict[str, Any] = {"metadata": {"name": name}, "rules": RULES["namespaced"]}
    rbac.create_namespaced_role(ns, role)
    subject = [{"kind": "ServiceAccount", "name": name, "namespace": ns}]
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": subject,
        },
    )
    cluster_name = f"{name}-{ns}"
    rbac.create_cluster_role({"metadata": {"name": cluster_name}, "rules": RULES["cluster"]})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": cluster_name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": cluster_name,
            },
            "subjects": subject,
        }
    )
    try:
        yield sa_kubeconfig(testbed, ns, name, tmp_path / "operator.kubeconfig")
    finally:
        rbac.delete_cluster_role_binding(cluster_name)
        rbac.delete_cluster_role(cluster_name)


def test_operator_reconciles_with_only_the_declared_rules(
    testbed: Testbed, cluster: Cluster, operator_account: Path, tmp_path: Path
) -> None:
    denied = testbed.kubectl(
        "--kubeconfig",
        str(operator_account),
        "auth",
        "can-i",
        "delete",
        "deployments",
        "-n",
        cluster.ns,
        check=False,
    )
    assert denied.strip() == "no"
    log = tmp_path / "operator.log"
    env = {
        **os.environ,
        "KUBECONFIG": str(operator_account),
        "DRIFTWARD_OPERATOR_NAMESPACES": json.dumps([cluster.ns]),
        "DRIFTWARD_OPERATOR_STANDALONE": "true",
        "DRIFTWARD_OPERATOR_RESYNC_SECONDS": "1",
        "DRIFTWARD_OPERATOR_LIVENESS_PORT": "0",
        "DRIFTWARD_OPERATOR_HTTP_PORT": "0",
        # kwok's pod IPs are not on loopback here: never send traffic to them.
        "DRIFTWARD_OPERATOR_EVALUATE_VERDICTS": "false",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftward_operator.cli"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        cluster.create(model("iris", window="1s"))
        wait_for(
            lambda: cluster.get("iris").get("status", {}).get("stableVersion") == "v1",
            60,
            "the operator, as its ServiceAccount, to reconcile v1 to stable",
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = log.read_text()
    assert "Forbidden" not in text, text[-3000:]
    assert " 403" not in text, text[-3000:]
    reasons = [e.reason for e in cluster.events("iris")]
    assert "CandidateDeployed" in reasons
    assert "Promoted" in reasons
