"""The operator's HTTP endpoint: Prometheus metrics and the health analysis.

An adapter only. ``GET /metrics`` serves the operator's registry.
``GET /v1/analysis/{namespace}/{name}[?version=v]`` always answers 200 with the
analysis JSON (for an Argo Rollouts Web metric: ``successCondition:
result.healthy == true``). ``GET /v1/gate/{namespace}/{name}`` and Flagger's
``POST /v1/gate`` webhook answer 200 when healthy and 412 when not, since
Flagger treats any non-2xx answer as a failed check.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from driftward_operator import api
from driftward_operator.analysis import compute_analysis
from driftward_operator.kube import KubeClient, KubeError

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
_MAX_BODY = 64 * 1024


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


def _json(start: StartResponse, code: str, doc: Mapping[str, Any]) -> list[bytes]:
    body = json.dumps(doc).encode()
    start(code, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def build_app(
    read_model: Callable[[str, str], Mapping[str, Any] | None], registry: CollectorRegistry
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app; ``read_model(namespace, name)`` returns the MonitoredModel or None."""
    metrics_app = make_wsgi_app(registry)

    def answer(
        start: StartResponse, namespace: str, name: str, version: str | None, gate: bool
    ) -> list[bytes]:
        try:
            mm = read_model(namespace, name)
        except KubeError as exc:
            return _json(start, "502 Bad Gateway", {"error": f"reading the model failed: {exc}"})
        if mm is None:
            return _json(
                start,
                "404 Not Found",
                {"error": f"MonitoredModel {namespace}/{name} does not exist"},
            )
        doc = compute_analysis(mm, version)
        code = "200 OK" if doc["healthy"] or not gate else "412 Precondition Failed"
        return _json(start, code, doc)

    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        method = str(environ.get("REQUEST_METHOD", "GET"))
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        version = query.get("version", [None])[0]
        parts = [p for p in path.split("/") if p]
        if path == "/metrics":
            return metrics_app(environ, start)  # type: ignore[no-any-return]
        if path == "/healthz":
            return _json(start, "200 OK", {"status": "ok"})
        routed = len(parts) == 4 and parts[:2] in (["v1", "analysis"], ["v1", "gate"])
        if method == "GET" and routed:
            return answer(start, parts[2], parts[3], version, gate=parts[1] == "gate")
        if method == "POST" and parts == ["v1", "gate"]:
            return _flagger(environ, start, answer)
        return _json(
            start,
            "404 Not Found",
            {
                "error": f"no route for {method} {path}; use GET /v1/analysis/NAMESPACE/NAME, "
                "GET /v1/gate/NAMESPACE/NAME, POST /v1/gate or GET /metrics"
            },
        )

    return app


def _flagger(
    environ: dict[str, Any],
    start: StartResponse,
    answer: Callable[[StartResponse, str, str, str | None, bool], list[bytes]],
) -> list[bytes]:
    """Flagger's webhook payload names the Canary; metadata.monitoredModel names the model."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if not 0 < length <= _MAX_BODY:
        return _json(
            start,
            "400 Bad Request",
            {"error": f"the body must be JSON of 1 to {_MAX_BODY} bytes (Content-Length)"},
        )
    try:
        payload = json.loads(environ["wsgi.input"].read(length))
    except ValueError as exc:
        return _json(start, "400 Bad Request", {"error": f"the body is not JSON: {exc}"})
    if not isinstance(payload, dict):
        return _json(start, "400 Bad Request", {"error": "the body must be a JSON object"})
    namespace = payload.get("namespace")
    metadata = payload.get("metadata") or {}
    name = metadata.get("monitoredModel") if isinstance(metadata, dict) else None
    if not isinstance(namespace, str) or not isinstance(name, str) or not name:
        return _json(
            start,
            "400 Bad Request",
            {
                "error": "need 'namespace' and 'metadata.monitoredModel' (the MonitoredModel's "
                f"name) in the webhook body; got namespace={namespace!r}, "
                f"metadata.monitoredModel={name!r}"
            },
        )
    version = metadata.get("version") if isinstance(metadata.get("version"), str) else None
    return answer(start, namespace, name, version, True)


def start_server(
    kube: KubeClient, registry: CollectorRegistry, host: str, port: int
) -> _ThreadingServer:
    """Serve metrics and the analysis on host:port in a background thread."""

    def read_model(namespace: str, name: str) -> Mapping[str, Any] | None:
        return kube.read(api.API_VERSION, api.KIND, namespace, name)

    server = make_server(
        host,
        port,
        build_app(read_model, registry),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="driftward-http", daemon=True).start()
    return server
