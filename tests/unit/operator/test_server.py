"""The analysis endpoint for Argo Rollouts and Flagger, and the operator's metrics."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from driftward_operator import api
from driftward_operator.metrics import OperatorMetrics
from driftward_operator.server import build_app

HEALTHY = {
    "metadata": {"name": "iris", "namespace": "ml"},
    "spec": {"model": {"version": "v2"}},
    "status": {
        "phase": "Healthy",
        "activeVersion": "v2",
        "conditions": [
            {"type": api.READY, "status": "True", "reason": "DeploymentAvailable"},
            {"type": api.DRIFTED, "status": "False", "reason": "NoDriftDetected"},
        ],
    },
}
ROLLED_BACK = {
    **HEALTHY,
    "status": {
        "phase": "RolledBack",
        "activeVersion": "v1",
        "conditions": [
            {"type": api.READY, "status": "True", "reason": "DeploymentAvailable"},
            {
                "type": api.ROLLED_BACK,
                "status": "True",
                "reason": "DriftDetected",
                "message": "drift in x",
            },
        ],
    },
}


def _call(
    models: Mapping[str, Any], method: str, path: str, body: bytes = b"", query: str = ""
) -> tuple[str, dict[str, Any] | str]:
    registry = CollectorRegistry()
    OperatorMetrics(registry).rollbacks.labels("ml", "iris", "DriftDetected").inc()
    app = build_app(lambda ns, name: models.get(f"{ns}/{name}"), registry)
    seen: list[str] = []
    environ = {
        "PATH_INFO": path,
        "REQUEST_METHOD": method,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    out = b"".join(app(environ, lambda status, headers, *_: seen.append(status)))
    try:
        return seen[0], json.loads(out)
    except ValueError:
        return seen[0], out.decode()


def test_analysis_always_answers_200_with_healthy_for_argo_rollouts() -> None:
    models = {"ml/iris": HEALTHY, "ml/old": ROLLED_BACK}
    code, doc = _call(models, "GET", "/v1/analysis/ml/iris")
    assert code == "200 OK"
    assert isinstance(doc, dict)
    assert doc["healthy"] is True
    code, doc = _call(models, "GET", "/v1/analysis/ml/old")
    assert code == "200 OK"
    assert isinstance(doc, dict)
    assert doc["healthy"] is False
    assert doc["reasons"] == ["RolledBack (DriftDetected): drift in x"]
    code, doc = _call(models, "GET", "/v1/analysis/ml/iris", query="version=v3")
    assert isinstance(doc, dict)
    assert doc["healthy"] is False
    assert "version v3 is not serving; version v2 is" in doc["reasons"]


def test_gate_answers_412_when_unhealthy_for_flagger() -> None:
    models = {"ml/iris": HEALTHY, "ml/old": ROLLED_BACK}
    assert _call(models, "GET", "/v1/gate/ml/iris")[0] == "200 OK"
    assert _call(models, "GET", "/v1/gate/ml/old")[0] == "412 Precondition Failed"
    payload = {"name": "podinfo", "namespace": "ml", "metadata": {"monitoredModel": "old"}}
    code, _ = _call(models, "POST", "/v1/gate", json.dumps(payload).encode())
    assert code == "412 Precondition Failed"
    payload["metadata"] = {"monitoredModel": "iris"}
    assert _call(models, "POST", "/v1/gate", json.dumps(payload).encode())[0] == "200 OK"


def test_bad_requests_are_named() -> None:
    code, doc = _call({}, "GET", "/v1/analysis/ml/nope")
    assert code == "404 Not Found"
    assert doc == {"error": "MonitoredModel ml/nope does not exist"}
    code, doc = _call({}, "POST", "/v1/gate", b"{not json")
    assert code == "400 Bad Request"
    assert isinstance(doc, dict)
    assert doc["error"].startswith("the body is not JSON")
    code, doc = _call({}, "POST", "/v1/gate", json.dumps({"namespace": "ml"}).encode())
    assert code == "400 Bad Request"
    assert isinstance(doc, dict)
    assert "metadata.monitoredModel=None" in doc["error"]
    code, doc = _call({}, "DELETE", "/v1/analysis/ml/iris")
    assert code == "404 Not Found"


def test_metrics_are_served() -> None:
    code, text = _call({}, "GET", "/metrics")
    assert code == "200 OK"
    assert isinstance(text, str)
    assert (
        'driftward_operator_rollbacks_total{name="iris",namespace="ml",reason="DriftDetected"} 1.0'
        in text
    )
