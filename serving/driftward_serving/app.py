"""The inference API: ``create_app(settings)`` builds the FastAPI app and its thin routes.

Routes parse with protocol.py, predict with predictor.py, remember ids with
ledger.py and queue records with handoff.py; they hold no logic of their own.

The hot path: at batch 1 the model costs ~20 µs, while FastAPI's per-request
machinery (routing over every route's regex, the middleware stack, Request
and Response objects, telemetry checks) costs several times that. So POSTs to
the served model's own inference paths (``/predict``,
``/v2/models/{name}/infer``, ``/v2/models/{name}/versions/{version}/infer``
with this server's name and version) take a *fast lane*: ``ServingApp``
recognises them by exact path before FastAPI runs, and answers them with the
same handler functions the FastAPI routes use, from raw ASGI messages. The
FastAPI routes for those paths still exist and answer everything else (other
model names get 404, other methods 405). No pydantic models are involved
anywhere on the request path; bodies are orjson in and out. Predictions run
on the event loop thread (cheaper than a thread hand-off at this size).

Errors: ``ApiError`` becomes its status with ``{"error", "reason"}``; unknown
paths and methods get the same shape; anything else is a genuine fault and
gets a clean 500 (counted as ``reason="internal"``), never a stack trace.

This module must not read the environment (settings arrive as an argument),
must not serve /metrics (see runner.py), and must not block on the monitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

import orjson
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftward_serving import protocol
from driftward_serving.artifacts import LOADING, ModelState, read_model_state
from driftward_serving.handoff import (
    LABEL,
    PREDICTION,
    QUEUE_FULL,
    LabelRecord,
    RecordBuffer,
    RecordSender,
)
from driftward_serving.ledger import (
    LABEL_OUTCOMES,
    Ledgers,
    build_prediction_ids,
    compute_label_outcome,
    open_ledgers,
)
from driftward_serving.metrics import ServingMetrics, build_metrics
from driftward_serving.predictor import FloatMatrix, ModelInputError, compute_prediction
from driftward_serving.protocol import ApiError, InputSpec
from driftward_serving.settings import ServingSettings

log = logging.getLogger(__name__)

JSON = "application/json"
UNMATCHED = "unmatched"
# Where each route records its template for metric labels; framework versions differ
# in whether (and where) they expose the matched route, so we set it ourselves.
ENDPOINT_KEY = "driftward.endpoint"
SHUTDOWN_FLUSH_SECONDS = 2.0
PREDICT_PATH = "/predict"
INFER_PATH = "/v2/models/{name}/infer"
INFER_VERSION_PATH = "/v2/models/{name}/versions/{version}/infer"
_INTERNAL_BODY = orjson.dumps(
    protocol.build_error_body(
        "internal server error; the failure is logged and counted", protocol.INTERNAL
    )
)


@dataclass
class ServingState:
    """Everything the routes share: settings, model, ledgers, record buffer and metrics."""

    settings: ServingSettings
    metrics: ServingMetrics
    model: ModelState
    ledgers: Ledgers
    buffer: RecordBuffer | None
    spec: InputSpec | None = None

    def require_model(self, name: object, version: object) -> InputSpec:
        """Return the input spec, or raise 404 for another model and 503 when not ready."""
        settings = self.settings
        if name != settings.model_name or (
            version is not None and version != settings.model_version
        ):
            raise protocol.build_model_not_found(
                str(name),
                None if version is None else str(version),
                settings.model_name,
                settings.model_version,
            )
        return self.require_ready()

    def require_ready(self) -> InputSpec:
        """Return the input spec, or raise 503 with the reason the model is not ready."""
        if self.spec is None:
            raise ApiError(
                503,
                protocol.MODEL_NOT_READY,
                f"model {self.settings.model_name!r} is not ready: "
                f"{self.model.reason}: {self.model.message}",
            )
        return self.spec


BodyHandler = Callable[[ServingState, str, bytes], bytes]


class ServingApp(FastAPI):
    """A FastAPI app whose inference POSTs for the served model skip the framework."""

    fast_routes: dict[str, tuple[str, BodyHandler]]
    serving: ServingState

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer fast-lane requests directly; hand everything else to FastAPI."""
        if scope["type"] == "http" and scope["method"] == "POST":
            route = self.fast_routes.get(scope["path"])
            if route is not None:
                await self._serve_fast(route, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _serve_fast(
        self, route: tuple[str, BodyHandler], scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        endpoint, handler = route
        state = self.serving
        try:
            raw = await receive_body(scope, receive, state.settings.max_body_bytes)
            if raw is None:
                return  # the client went away; nobody to answer
            payload, status = handler(state, endpoint, raw), 200
        except ApiError as exc:
            state.metrics.count_error(endpoint, exc.reason)
            payload = orjson.dumps(protocol.build_error_body(exc.message, exc.reason))
            status = exc.status
        except Exception:
            log.exception("internal error on POST %s", scope["path"])
            state.metrics.count_error(endpoint, protocol.INTERNAL)
            payload, status = _INTERNAL_BODY, 500
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(payload)),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        state.metrics.observe_request(endpoint, status, time.perf_counter() - started)


def create_app(
    settings: ServingSettings,
    *,
    registry: CollectorRegistry | None = None,
    model_state: ModelState | None = None,
    ledgers: Ledgers | None = None,
    on_ready: Callable[[ModelState], None] | None = None,
) -> ServingApp:
    """Build the inference app; the model loads (or fails to) during startup."""
    metrics = build_metrics(
        registry or CollectorRegistry(),
        settings.model_name,
        settings.model_version,
        protocol.ERROR_REASONS,
    )
    state = ServingState(
        settings=settings,
        metrics=metrics,
        model=model_state or ModelState(ready=False, reason=LOADING, message="loading"),
        ledgers=ledgers
        or open_ledgers(
            settings.shared_state_dir, settings.workers, settings.prediction_id_retention
        ),
        buffer=RecordBuffer(settings.record_queue_size) if settings.monitor_url else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if state.model.reason == LOADING:
            state.model = await asyncio.to_thread(read_model_state, settings)
        if state.model.ready and state.model.predictor is not None:
            state.spec = protocol.build_input_spec(state.model.predictor, settings.max_batch_size)
        metrics.model_ready.labels(settings.model_name, settings.model_version).set(
            1 if state.spec is not None else 0
        )
        metrics.sklearn_mismatch.labels(settings.model_name, settings.model_version).set(
            1 if state.model.sklearn_mismatch else 0
        )
        sender = _start_sender(state)
        # Everything allocated so far (modules, the model) lives for the whole process;
        # freezing it keeps full collections from rescanning it mid-request (p99 spikes).
        gc.collect()
        gc.freeze()
        if on_ready is not None:
            on_ready(state.model)
        try:
            yield
        finally:
            await _stop_sender(sender)

    app = ServingApp(
        title="driftward serving",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.serving = state
    app.state.serving = state
    name, version = settings.model_name, settings.model_version
    app.fast_routes = {
        PREDICT_PATH: (PREDICT_PATH, handle_predict),
        f"/v2/models/{name}/infer": (INFER_PATH, handle_infer),
        f"/v2/models/{name}/versions/{version}/infer": (INFER_VERSION_PATH, handle_infer),
    }
    _add_routes(app, state)
    _add_error_handlers(app, state)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def create_app_from_env() -> ServingApp:
    """App factory for worker processes: settings come from the environment the parent set."""
    settings = ServingSettings()  # type: ignore[call-arg]  # required fields come from env
    return create_app(settings)


def _start_sender(state: ServingState) -> tuple[RecordSender, asyncio.Task[None]] | None:
    if state.buffer is None:
        return None
    settings, metrics = state.settings, state.metrics
    sender = RecordSender(
        buffer=state.buffer,
        monitor_url=settings.monitor_url,
        model=settings.model_name,
        version=settings.model_version,
        batch_size=settings.record_batch_size,
        flush_seconds=settings.record_flush_seconds,
        timeout_seconds=settings.monitor_timeout_seconds,
        on_sent=metrics.count_sent,
        on_dropped=metrics.count_dropped,
    )
    return sender, asyncio.create_task(sender.run(), name="driftward-record-sender")


async def _stop_sender(running: tuple[RecordSender, asyncio.Task[None]] | None) -> None:
    if running is None:
        return
    sender, task = running
    # Give queued records one bounded chance to leave before the process exits.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(sender.flush(), SHUTDOWN_FLUSH_SECONDS)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def receive_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """Read a request body from ASGI messages, refusing with 413 once it exceeds `limit`.

    A declared Content-Length over the limit is refused before reading anything;
    a chunked body is counted as it arrives. Returns None if the client left.
    """
    for name, value in scope["headers"]:
        if name == b"content-length":
            if not value.isdigit():
                raise ApiError(400, protocol.BAD_REQUEST, f"invalid Content-Length {value!r}")
            if int(value) > limit:
                raise _too_large(int(value), limit)
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > limit:
            raise _too_large(len(body), limit)
    return body


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        protocol.BODY_TOO_LARGE,
        f"the request body has at least {size} bytes; at most {limit} are accepted "
        "(DRIFTWARD_SERVING_MAX_BODY_BYTES)",
    )


def _dumps(body: Any) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def _json(body: Any, status: int = 200) -> Response:
    return Response(_dumps(body), status_code=status, media_type=JSON)


def handle_predict(state: ServingState, endpoint: str, raw: bytes) -> bytes:
    """Answer a /predict body with predictions, probabilities and ids."""
    spec = state.require_ready()
    matrix = protocol.parse_predict_request(protocol.decode_json(raw), spec)
    outputs, proba, ids = _predict(state, endpoint, matrix)
    settings = state.settings
    return _dumps(
        protocol.build_predict_response(
            model_name=settings.model_name,
            model_version=settings.model_version,
            outputs=outputs,
            proba=proba,
            ids=ids,
        )
    )


def handle_infer(state: ServingState, endpoint: str, raw: bytes) -> bytes:
    """Answer a V2 inference body (the model name was matched by the route)."""
    spec = state.require_ready()
    parsed = protocol.parse_v2_request(protocol.decode_json(raw), spec)
    outputs, proba, ids = _predict(state, endpoint, parsed.matrix)
    settings, predictor = state.settings, state.model.predictor
    return _dumps(
        protocol.build_v2_response(
            model_name=settings.model_name,
            model_version=settings.model_version,
            response_id=parsed.request_id or _new_id(),
            outputs=outputs,
            proba=proba,
            classes=predictor.classes if predictor is not None else None,
            ids=ids,
            requested=parsed.outputs,
        )
    )


def handle_feedback(state: ServingState, endpoint: str, raw: bytes) -> bytes:
    """Answer a /feedback body with the outcome of every label."""
    state.require_ready()
    body = protocol.decode_json(raw)
    labels = protocol.parse_feedback_request(body, state.settings.max_batch_size)
    return _dumps(_record_labels(state, labels))


def _predict(state: ServingState, endpoint: str, matrix: FloatMatrix) -> tuple[Any, Any, list[str]]:
    """Predict a validated batch, issue one id per row, and queue the records."""
    predictor = state.model.predictor
    assert predictor is not None  # require_ready() guarantees it
    try:
        prediction = compute_prediction(predictor, matrix)
    except ModelInputError as exc:
        raise ApiError(
            422, protocol.MODEL_REJECTED_INPUT, f"the model rejected the input: {exc}"
        ) from exc
    rows = matrix.shape[0]
    issued = build_prediction_ids(os.urandom(16 * rows))
    metrics = state.metrics
    add = state.ledgers.issued.add
    for _, value in issued:
        evicted = add(value)
        if evicted.expired or evicted.forgotten:
            metrics.count_evicted("expired", evicted.expired)
            metrics.count_evicted("forgotten", evicted.forgotten)
    ids = [text for text, _ in issued]
    metrics.observe_batch(endpoint, rows)
    if state.buffer is not None:
        dropped = state.buffer.offer_predictions(
            ids, time.time(), matrix, prediction.outputs, prediction.proba
        )
        if dropped is not None:
            metrics.count_dropped(PREDICTION, dropped, rows)
    return prediction.outputs, prediction.proba, ids


def _record_labels(state: ServingState, labels: list[protocol.LabelIn]) -> dict[str, Any]:
    """Classify labels, count them, and queue all of them for the monitor.

    Every label is forwarded, whatever its outcome: the monitor holds the
    predictions and does the authoritative join, and a Bloom-filter false
    positive here must never lose a real label. The outcomes are accounting.
    """
    ledgers, metrics = state.ledgers, state.metrics
    outcomes = [compute_label_outcome(ledgers.issued, ledgers.labelled, lab.id) for lab in labels]
    for outcome in outcomes:
        metrics.count_label(outcome)
    dropped = 0
    forwarding = state.buffer is not None
    if state.buffer is not None:
        now = time.time()
        records = [LabelRecord(id=lab.id, ts=now, label=lab.label) for lab in labels]
        dropped = state.buffer.offer_labels(records)
        metrics.count_dropped(LABEL, QUEUE_FULL, dropped)
    summary: dict[str, Any] = {"received": len(labels)}
    summary.update({outcome: outcomes.count(outcome) for outcome in LABEL_OUTCOMES})
    summary["queued_for_monitor"] = len(labels) - dropped if forwarding else 0
    summary["dropped"] = dropped
    summary["results"] = [
        {"id": lab.id, "outcome": outcome} for lab, outcome in zip(labels, outcomes, strict=True)
    ]
    return summary


def _new_id() -> str:
    return build_prediction_ids(os.urandom(16))[0][0]


def _package_version() -> str:
    try:
        return package_version("driftward")
    except PackageNotFoundError:
        return "unknown"


Endpoint = Callable[[Request], Awaitable[Response]]


def _add_routes(app: FastAPI, state: ServingState) -> None:
    settings = state.settings

    async def live(_: Request) -> Response:
        return _json({"live": True})

    async def ready(_: Request) -> Response:
        if state.spec is None:
            body = {"ready": False, "reason": state.model.reason, "message": state.model.message}
            return _json(body, 503)
        return _json({"ready": True})

    async def model_ready(request: Request) -> Response:
        params = request.path_params
        try:
            state.require_model(params.get("name"), params.get("version"))
        except ApiError as exc:
            if exc.status != 503:
                raise
            return await ready(request)
        return _json({"name": settings.model_name, "ready": True})

    async def server_metadata(_: Request) -> Response:
        return _json({"name": "driftward-serving", "version": _package_version(), "extensions": []})

    async def model_metadata(request: Request) -> Response:
        state.require_model(request.path_params.get("name"), request.path_params.get("version"))
        predictor = state.model.predictor
        assert predictor is not None
        return _json(
            protocol.build_model_metadata(
                model_name=settings.model_name,
                model_version=settings.model_version,
                predictor=predictor,
                model_format=settings.model_format,
                sha256=settings.artifact_sha256,
                sklearn_mismatch=state.model.sklearn_mismatch,
            )
        )

    def body_route(handler: BodyHandler, check_model: bool) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            if check_model:
                params = request.path_params
                state.require_model(params.get("name"), params.get("version"))
            raw = await receive_body(request.scope, request.receive, settings.max_body_bytes)
            if raw is None:
                return Response(status_code=499)
            return Response(handler(state, _route_path(request.scope), raw), media_type=JSON)

        return endpoint

    routes: list[tuple[str, Endpoint, str]] = [
        ("/v2/health/live", live, "GET"),
        ("/v2/health/ready", ready, "GET"),
        ("/v2", server_metadata, "GET"),
        ("/v2/models/{name}", model_metadata, "GET"),
        ("/v2/models/{name}/versions/{version}", model_metadata, "GET"),
        ("/v2/models/{name}/ready", model_ready, "GET"),
        ("/v2/models/{name}/versions/{version}/ready", model_ready, "GET"),
        (INFER_PATH, body_route(handle_infer, check_model=True), "POST"),
        (INFER_VERSION_PATH, body_route(handle_infer, check_model=True), "POST"),
        (PREDICT_PATH, body_route(handle_predict, check_model=False), "POST"),
        ("/feedback", body_route(handle_feedback, check_model=False), "POST"),
    ]
    for path, handler, method in routes:
        app.add_route(path, _labelled(path, handler), methods=[method])


def _labelled(path: str, handler: Endpoint) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        request.scope[ENDPOINT_KEY] = path
        return await handler(request)

    return endpoint


def _add_error_handlers(app: FastAPI, state: ServingState) -> None:
    metrics = state.metrics

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        metrics.count_error(_route_path(request.scope), exc.reason)
        return _json(protocol.build_error_body(exc.message, exc.reason), exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        reasons = {404: protocol.NOT_FOUND, 405: protocol.METHOD_NOT_ALLOWED}
        reason = reasons.get(exc.status_code, protocol.BAD_REQUEST)
        metrics.count_error(_route_path(request.scope), reason)
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return _json(protocol.build_error_body(message, reason), exc.status_code)

    async def server_fault(request: Request, exc: Exception) -> Response:
        # Counted in MetricsMiddleware, which sees the exception first.
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return Response(_INTERNAL_BODY, status_code=500, media_type=JSON)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, server_fault)


class MetricsMiddleware:
    """Pure ASGI middleware timing and counting every FastAPI-routed request."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and count it under its route template and status code."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except Exception:
            status = 500
            self.metrics.count_error(_route_path(scope), protocol.INTERNAL)
            raise
        finally:
            self.metrics.observe_request(_route_path(scope), status, time.perf_counter() - started)


def _route_path(scope: Scope) -> str:
    return str(scope.get(ENDPOINT_KEY, UNMATCHED))
