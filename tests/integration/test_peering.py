"""Two operator replicas with kopf peering: only the higher-priority one acts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.conftest import ROOT, Testbed
from tests.integration.helpers import Cluster, model, wait_for

PEERING_CRDS = ROOT / "crds" / "kopf.dev_peerings.yaml"


@pytest.fixture
def peering(testbed: Testbed, cluster: Cluster) -> str:
    testbed.kubectl("apply", "--server-side", "-f", str(PEERING_CRDS))
    testbed.kubectl(
        "wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev", "--timeout=60s"
    )
    body = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "driftward"}}
    client.CustomObjectsApi(cluster.custom.api_client).create_namespaced_custom_object(
        "kopf.dev", "v1", cluster.ns, "kopfpeerings", body
    )
    return "driftward"


def start_replica(
    testbed: Testbed, namespace: str, priority: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KUBECONFIG": str(testbed.kubeconfig),
        "POD_ID": f"replica-{priority}",
        "DRIFTWARD_OPERATOR_NAMESPACES": json.dumps([namespace]),
        "DRIFTWARD_OPERATOR_PRIORITY": str(priority),
        "DRIFTWARD_OPERATOR_RESYNC_SECONDS": "1",
        "DRIFTWARD_OPERATOR_LIVENESS_PORT": "0",
        "DRIFTWARD_OPERATOR_HTTP_PORT": "0",
        # kwok's pod IPs are not on loopback here: never send traffic to them.
        "DRIFTWARD_OPERATOR_EVALUATE_VERDICTS": "false",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "driftward_operator.cli"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def replicas(
    testbed: Testbed, cluster: Cluster, peering: str, tmp_path: Path
) -> Iterator[tuple[Path, Path]]:
    low_log, high_log = tmp_path / "low.log", tmp_path / "high.log"
    procs = [
        start_replica(testbed, cluster.ns, 10, low_log),
        start_replica(testbed, cluster.ns, 20, high_log),
    ]
    try:
        yield low_log, high_log
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def test_only_the_higher_priority_replica_reconciles(
    cluster: Cluster, replicas: tuple[Path, Path]
) -> None:
    low_log, high_log = replicas

    def peers() -> set[str]:
        body = client.CustomObjectsApi(cluster.custom.api_client).get_namespaced_custom_object(
            "kopf.dev", "v1", cluster.ns, "kopfpeerings", "driftward"
        )
        return set(body.get("status") or {})

    wait_for(
        lambda: {"replica-10", "replica-20"} <= peers(), 60, "both replicas to join the peering"
    )
    cluster.create(model("iris", window="1s"))
    wait_for(
        lambda: cluster.get("iris").get("status", {}).get("stableVersion") == "v1", 60, "v1 stable"
    )
    time.sleep(3)
    assert "status: phase=" in high_log.read_text()
    assert "status: phase=" not in low_log.read_text(), low_log.read_text()[-2000:]
