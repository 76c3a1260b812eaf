"""Manual rollback, retry and promote through annotations, against the real API server.

The operator runs with KopfRunner. The rollback is applied to the real
Deployment, recorded once in status with one Event, survives a GitOps-style
re-apply of the unchanged spec, and a retry brings the version back.
"""

from __future__ import annotations

import time
from typing import Any

import kopf
from kopf.testing import KopfRunner

from driftward_operator.handlers import register
from driftward_operator.settings import OperatorSettings
from tests.conftest import Testbed
from tests.integration.helpers import GROUP, PLURAL, VERSION, Cluster, model, wait_for

DIGEST_ANNOTATION = "driftward.dev/artifact-sha256"


def _annotate(cluster: Cluster, name: str, annotations: dict[str, str]) -> None:
    cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, cluster.ns, PLURAL, name, {"metadata": {"annotations": annotations}}
    )


def _served_digest(cluster: Cluster, name: str) -> str:
    return str(cluster.deployment(name).metadata.annotations[DIGEST_ANNOTATION])


def _status(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(cluster.get(name).get("status", {}))


def test_rollback_retry_and_promote_requests(kubeconfig_env: Testbed, cluster: Cluster) -> None:
    registry = kopf.OperatorRegistry()
    # kwok's pod IPs are not on loopback in this cluster: never send traffic to them.
    settings = OperatorSettings(
        resync_seconds=1, standalone=True, namespaces=[cluster.ns], evaluate_verdicts=False
    )
    register(registry, settings)
    runner = KopfRunner(
        ["run", "--standalone", "--namespace", cluster.ns], registry=registry, timeout=90
    )
    with runner:
        cluster.create(model("iris", window="2s"))
        wait_for(lambda: _status(cluster, "iris").get("stableVersion") == "v1", 60, "v1 stable")
        # v2 with a long window stays the candidate, so a promote request is what promotes it.
        cluster.patch_spec(
            "iris",
            {
                "model": {"version": "v2", "sha256": "2" * 64, "uri": "file:///models/v2.skops"},
                "policy": {"promotionWindow": "1h"},
            },
        )
        wait_for(lambda: _served_digest(cluster, "iris") == "2" * 64, 60, "v2 to be deployed")

        _annotate(cluster, "iris", {"driftward.dev/rollback": "first"})
        wait_for(lambda: _served_digest(cluster, "iris") == "1" * 64, 60, "the rollback to v1")
        status = _status(cluster, "iris")
        assert status["activeVersion"] == "v1"
        assert status["stableVersion"] == "v1"
        assert status["requests"] == {"rollback": "first"}
        rolled = next(c for c in status["conditions"] if c["type"] == "RolledBack")
        assert rolled["status"] == "True"
        assert rolled["reason"] == "ManualRollback"
        assert "rolled back to stable version v1 on request" in rolled["message"]
        assert status["history"][0]["outcome"] == "RolledBack"

        # Argo CD re-applying the unchanged spec must not bring v2 back.
        spec = cluster.get("iris")["spec"]
        cluster.patch_spec("iris", spec)
        wait_for(lambda: _status(cluster, "iris")["phase"] == "RolledBack", 30, "phase RolledBack")
        for _ in range(3):
            assert _served_digest(cluster, "iris") == "1" * 64
            time.sleep(1)  # a resync interval: nothing may flip back
        rollback_events = [e for e in cluster.events("iris") if e.reason == "ManualRollback"]
        assert len(rollback_events) == 1

        _annotate(cluster, "iris", {"driftward.dev/retry": "again"})
        wait_for(lambda: _served_digest(cluster, "iris") == "2" * 64, 60, "v2 retried")
        wait_for(
            lambda: _status(cluster, "iris").get("candidateVersion") == "v2", 30, "v2 candidate"
        )
        _annotate(cluster, "iris", {"driftward.dev/promote": "go"})
        wait_for(lambda: _status(cluster, "iris").get("stableVersion") == "v2", 60, "v2 promoted")
        status = _status(cluster, "iris")
        assert status["requests"] == {"rollback": "first", "retry": "again", "promote": "go"}
        assert next(c for c in status["conditions"] if c["type"] == "RolledBack")["status"] == (
            "False"
        )
    assert runner.exception is None, runner.exception
