"""The monitor sidecar's HTTP app: record intake, verdict, window export, report.

``create_app(settings, registry)`` reads the config and the pinned reference
once, builds the live window, and returns a Starlette app whose lifespan runs
the evaluation loop on the configured interval. Routes are thin: they parse,
call the window or the pure ``compute_verdict``, and format.

Starlette rather than FastAPI, and msgspec rather than pydantic: the routes
are few and decode their one body straight into msgspec structs, while
FastAPI's import (OpenAPI models) alone costs ~0.4 s and pydantic's ~0.15 s
of the sidecar's 0.5 s start-up budget. This module must not
import scikit-learn, pandas, pyarrow or scipy.stats; statistics live in the
pure modules, and datasets are read by ``sources`` only when one is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any

import msgspec
import orjson
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from driftward_serving import recordbatch
from driftward_serving.monitor.config import MonitorConfig, describe_problem
from driftward_serving.monitor.counts import WindowCounts, window_counts_to_json
from driftward_serving.monitor.metrics import MonitorMetrics, WindowCountsCollector
from driftward_serving.monitor.performance import (
    CLASSIFICATION_METRIC_NAMES,
    REGRESSION_METRIC_NAMES,
)
from driftward_serving.monitor.profile import Profile, Task, profile_to_json
from driftward_serving.monitor.report import render_report
from driftward_serving.monitor.settings import MonitorSettings
from driftward_serving.monitor.sources import (
    read_monitor_config,
    read_reference_profile_isolated,
)
from driftward_serving.monitor.stats import preload_special_functions
from driftward_serving.monitor.verdict import Verdict, compute_verdict, verdict_to_json
from driftward_serving.monitor.window import IntakeResult, LiveWindow
from driftward_serving.recordbatch import RecordBatch

log = logging.getLogger("driftward.monitor")
# A producer stuck sending a bad batch must not flood the log at its send rate.
REFUSAL_LOG_EVERY_SECONDS = 60.0


RecordId = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class PredictionIn(msgspec.Struct, frozen=True, kw_only=True):
    """One prediction in a POST /v1/records batch (docs/contracts.md); extra fields are ignored."""

    id: RecordId
    ts: float
    # Raw JSON values: the window converts each feature by its declared type,
    # so coercing them here would only cost time.
    features: list[Any]
    output: Any = None
    proba: list[float] | None = None


class LabelIn(msgspec.Struct, frozen=True, kw_only=True):
    """One ground-truth label in a POST /v1/records batch."""

    id: RecordId
    ts: float
    label: Any


class RecordBatchIn(msgspec.Struct, frozen=True, kw_only=True):
    """The body of POST /v1/records."""

    model: str = ""
    version: str = ""
    predictions: list[PredictionIn] = msgspec.field(default_factory=list)
    labels: list[LabelIn] = msgspec.field(default_factory=list)


_decode_batch = msgspec.json.Decoder(RecordBatchIn).decode


class JSONResponse(Response):
    """JSON via orjson (NaN and infinities become null)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise the content."""
        return orjson.dumps(content)


def _problem(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


class RefusalLog:
    """Log refused record batches: the first of each reason at once, then one line a
    minute per reason with how many were refused since (the metric counts them all)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logged_at: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def note(self, reason: str, status: int, message: str) -> None:
        """Record one refusal; log it unless this reason was logged within the minute."""
        now = self._clock()
        last = self._logged_at.get(reason)
        if last is not None and now - last < REFUSAL_LOG_EVERY_SECONDS:
            self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
            return
        since = self._unlogged.pop(reason, 0)
        more = f" ({since} more refused for this reason since the last line)" if since else ""
        log.warning("refused a records batch (%s, HTTP %d): %s%s", reason, status, message, more)
        self._logged_at[reason] = now


class MonitorService:
    """The monitor's state and behaviour behind the routes and the evaluation loop."""

    def __init__(
        self,
        settings: MonitorSettings,
        config: MonitorConfig,
        profile: Profile,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.config = config
        self.profile = profile
        self.model = settings.model_name or config.model.name
        self.version = settings.model_version or config.model.version
        self.window = LiveWindow(profile, config, settings.join_buffer_size)
        metric_names = (
            REGRESSION_METRIC_NAMES
            if config.model.task is Task.REGRESSION
            else CLASSIFICATION_METRIC_NAMES
        )
        self.metrics = MonitorMetrics(
            registry, self.model, self.version, [f.name for f in config.features], metric_names
        )
        self.clock = clock
        self.last_verdict: Verdict | None = None
        self.last_counts: WindowCounts | None = None
        registry.register(WindowCountsCollector(self.model, self.version, lambda: self.last_counts))
        self._evaluating = asyncio.Lock()
        self._join_evictions_seen = 0
        self.refusals = RefusalLog()

    def refuse(
        self, status: int, reason: str, message: str, detail: str | None = None
    ) -> JSONResponse:
        """Count, log and answer a batch refused whole (`detail`: what in it is wrong)."""
        self.metrics.observe_rejected_batch(reason)
        if detail is None:
            self.refusals.note(reason, status, message)
            return _problem(status, message)
        self.refusals.note(reason, status, f"{message}: {detail}")
        return _problem(status, message, details=[detail])

    def ingest(self, batch: RecordBatchIn) -> dict[str, int]:
        """Count a JSON batch into the window; returns the contract's response body."""
        return self._summarise(
            self.window.add_predictions(batch.predictions), self.window.add_labels(batch.labels)
        )

    def ingest_columns(self, batch: RecordBatch, labels: Sequence[LabelIn]) -> dict[str, int]:
        """Count a binary record batch into the window; returns the contract's response body."""
        return self._summarise(
            self.window.add_prediction_columns(
                batch.ids, batch.ts, batch.features, batch.outputs, batch.proba
            ),
            self.window.add_labels(labels),
        )

    def _summarise(self, predictions: IntakeResult, labels: IntakeResult) -> dict[str, int]:
        evictions = self.window.join_evictions - self._join_evictions_seen
        self._join_evictions_seen = self.window.join_evictions
        self.metrics.observe_intake(predictions, 0)
        self.metrics.observe_intake(labels, evictions)
        return {
            "accepted_predictions": predictions.accepted_predictions,
            "accepted_labels": labels.accepted_labels,
            "unknown_labels": labels.unknown_labels,
            "duplicate_labels": labels.duplicate_labels,
            "late_labels": labels.late_labels,
            "rejected_predictions": predictions.rejected_predictions,
            "invalid_labels": labels.invalid_labels,
        }

    async def evaluate(self) -> tuple[Verdict, WindowCounts]:
        """Judge the window as it is now; exports metrics and keeps the result."""
        async with self._evaluating:
            counts = self.window.snapshot()
            started = time.perf_counter()
            try:
                # Off the event loop: the first call imports scipy.special (~0.5 s).
                verdict = await asyncio.to_thread(
                    compute_verdict,
                    self.profile,
                    self.config,
                    counts,
                    self.clock(),
                    model=self.model,
                    version=self.version,
                )
            except Exception:
                self.metrics.observe_failed_evaluation()
                raise
            self.metrics.observe_verdict(verdict, time.perf_counter() - started)
            self.last_verdict, self.last_counts = verdict, counts
            return verdict, counts

    async def latest(self) -> tuple[Verdict, WindowCounts]:
        """The last verdict, evaluating first if there is none yet."""
        if self.last_verdict is None or self.last_counts is None:
            return await self.evaluate()
        return self.last_verdict, self.last_counts

    async def run_loop(self) -> None:
        """Evaluate on the configured interval until cancelled; a failure is logged, not fatal."""
        interval = self.config.interval_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                verdict, _ = await self.evaluate()
                log.debug("verdict %s: %s", verdict.state.value, "; ".join(verdict.reasons))
            except Exception:
                log.exception("evaluation failed; the previous verdict stays")


async def _read_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _invalid(service: MonitorService, problem: str) -> Response:
    return service.refuse(
        422, "invalid", "the batch does not follow docs/contracts.md", detail=problem
    )


def _loads_or_none(body: bytes) -> Any:
    """The body as plain JSON, to show the bad value in a message (it parsed once already)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _accept(service: MonitorService, records: int, version: str) -> Response | None:
    """The refusal for a well-formed batch this monitor will not take, or None."""
    settings = service.settings
    if records > settings.max_batch_size:
        return service.refuse(
            413, "too_large", f"more than {settings.max_batch_size} records in one batch"
        )
    if version and service.version and version != service.version:
        return service.refuse(
            409,
            "version_mismatch",
            f"this monitor watches version {service.version!r}, not {version!r}",
        )
    return None


def _ingest_record_batch(service: MonitorService, body: bytes) -> Response:
    try:
        # Any row count the body's bytes can hold parses; too many rows is a 413 below.
        batch = recordbatch.parse_record_batch(body, max_rows=len(body))
    except recordbatch.RecordBatchError as error:
        return _invalid(service, str(error))
    try:
        labels = msgspec.convert(batch.labels, list[LabelIn])
    except msgspec.ValidationError as error:
        return _invalid(service, describe_problem(error, batch.labels, "labels"))
    return _accept(service, batch.rows + len(labels), batch.version) or (
        JSONResponse(service.ingest_columns(batch, labels))
    )


def _routes(service: MonitorService) -> list[Route]:
    settings = service.settings

    async def records(request: Request) -> Response:
        body = await _read_body(request, settings.max_body_bytes)
        if body is None:
            return service.refuse(
                413,
                "too_large",
                f"body is larger than {settings.max_body_bytes} bytes; send smaller batches",
            )
        media_type = request.headers.get("content-type", "").partition(";")[0].strip()
        if media_type == recordbatch.MEDIA_TYPE:
            return _ingest_record_batch(service, body)
        try:
            batch = _decode_batch(body)
        except msgspec.ValidationError as error:
            return _invalid(service, describe_problem(error, _loads_or_none(body)))
        except msgspec.DecodeError as error:
            return _invalid(service, f"the body is not JSON: {error}")
        return _accept(service, len(batch.predictions) + len(batch.labels), batch.version) or (
            JSONResponse(service.ingest(batch))
        )

    async def verdict(_: Request) -> Response:
        result, _counts = await service.latest()
        return JSONResponse(verdict_to_json(result))

    async def evaluate(_: Request) -> Response:
        result, _counts = await service.evaluate()
        return JSONResponse(verdict_to_json(result))

    async def window(_: Request) -> Response:
        doc = window_counts_to_json(service.window.snapshot())
        doc.update(model=service.model, version=service.version, windowSize=service.window.capacity)
        return JSONResponse(doc)

    async def profile(_: Request) -> Response:
        doc = profile_to_json(service.profile)
        doc["digest"] = service.window.profile_digest
        return JSONResponse(doc)

    async def report(_: Request) -> Response:
        result, counts = await service.latest()
        page = await asyncio.to_thread(render_report, service.profile, counts, result)
        return HTMLResponse(page)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return [
        Route("/v1/records", records, methods=["POST"]),
        Route("/v1/verdict", verdict, methods=["GET"]),
        Route("/v1/evaluate", evaluate, methods=["POST"]),
        Route("/v1/window", window, methods=["GET"]),
        Route("/v1/profile", profile, methods=["GET"]),
        Route("/report", report, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", healthz, methods=["GET"]),
    ]


def create_app(
    settings: MonitorSettings,
    registry: CollectorRegistry | None = None,
    *,
    clock: Callable[[], float] = time.time,
    run_loop: bool = True,
) -> Starlette:
    """Read the config and the pinned reference, and build the monitor app."""
    config = read_monitor_config(settings.config_path)
    profile = read_reference_profile_isolated(config, settings.max_reference_bytes)
    service = MonitorService(settings, config, profile, registry or CollectorRegistry(), clock)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # Before the monitor reports ready, so the pod takes traffic only afterwards.
        await asyncio.to_thread(preload_special_functions)
        task = asyncio.create_task(service.run_loop()) if run_loop else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = Starlette(routes=_routes(service), lifespan=lifespan)
    app.state.service = service
    return app
