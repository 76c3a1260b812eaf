"""The serving process's Prometheus metrics, on a registry the app owns.

Every metric carries the bounded labels ``model`` and ``version``; the rest
(endpoint route template, status code, error reason, outcome) come from closed
sets, initialised up front so dashboards see zeros instead of gaps. Names carry
units and counters end in ``_total``.

With ``--workers N`` each worker writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, switched on
by that variable before the worker starts) and the parent process serves one
merged ``/metrics`` (``build_multiprocess_registry``). With one worker the app's
own registry is served directly. This module must not use the global default
registry and must not serve HTTP itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from driftward_serving.handoff import DROP_REASONS, RECORD_KINDS
from driftward_serving.ledger import LABEL_OUTCOMES

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
ID_TIERS = ("expired", "forgotten")
# Route templates are label values: bounded, never the raw path.
ENDPOINTS = (
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
    "/predict",
    "/feedback",
)


@dataclass
class ServingMetrics:
    """The serving metrics, bound to one model and version."""

    registry: CollectorRegistry
    model: str
    version: str
    requests: Counter
    latency: Histogram
    errors: Counter
    batch_rows: Histogram
    records_sent: Counter
    records_dropped: Counter
    labels: Counter
    prediction_ids_evicted: Counter
    model_ready: Gauge
    sklearn_mismatch: Gauge
    _request_children: dict[tuple[str, int], tuple[Any, Any]] = field(default_factory=dict)
    _batch_children: dict[str, Any] = field(default_factory=dict)

    def observe_request(self, endpoint: str, code: int, seconds: float) -> None:
        """Count one finished request and its latency."""
        key = (endpoint, code)
        children = self._request_children.get(key)
        if children is None:
            # Binding labels costs a lock and a dict lookup; do it once per (endpoint, code).
            children = (
                self.requests.labels(self.model, self.version, endpoint, str(code)),
                self.latency.labels(self.model, self.version, endpoint),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_error(self, endpoint: str, reason: str) -> None:
        """Count a request that failed, by a bounded reason."""
        self.errors.labels(self.model, self.version, endpoint, reason).inc()

    def observe_batch(self, endpoint: str, rows: int) -> None:
        """Record the number of rows in one inference request."""
        child = self._batch_children.get(endpoint)
        if child is None:
            child = self._batch_children[endpoint] = self.batch_rows.labels(
                self.model, self.version, endpoint
            )
        child.observe(rows)

    def count_sent(self, kind: str, n: int) -> None:
        """Count records the monitor accepted."""
        if n:
            self.records_sent.labels(self.model, self.version, kind).inc(n)

    def count_dropped(self, kind: str, reason: str, n: int) -> None:
        """Count records that will never reach the monitor."""
        if n:
            self.records_dropped.labels(self.model, self.version, kind, reason).inc(n)

    def count_label(self, outcome: str) -> None:
        """Count one received label by its outcome."""
        self.labels.labels(self.model, self.version, outcome).inc()

    def count_evicted(self, tier: str, n: int) -> None:
        """Count prediction ids that left the live window or were forgotten."""
        if n:
            self.prediction_ids_evicted.labels(self.model, self.version, tier).inc(n)


def build_metrics(
    registry: CollectorRegistry, model: str, version: str, error_reasons: Iterable[str]
) -> ServingMetrics:
    """Create every serving metric on `registry`, with label sets initialised."""
    ids = ["model", "version"]
    metrics = ServingMetrics(
        registry=registry,
        model=model,
        version=version,
        requests=Counter(
            "driftward_serving_requests_total",
            "Inference API requests by route template and HTTP status code.",
            [*ids, "endpoint", "code"],
            registry=registry,
        ),
        latency=Histogram(
            "driftward_serving_request_duration_seconds",
            "Time from request start to response, by route template.",
            [*ids, "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        errors=Counter(
            "driftward_serving_errors_total",
            "Requests answered with an error, by route template and reason.",
            [*ids, "endpoint", "reason"],
            registry=registry,
        ),
        batch_rows=Histogram(
            "driftward_serving_batch_size_rows",
            "Rows per inference request.",
            [*ids, "endpoint"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        ),
        records_sent=Counter(
            "driftward_serving_records_sent_total",
            "Prediction records and labels the monitor accepted.",
            [*ids, "kind"],
            registry=registry,
        ),
        records_dropped=Counter(
            "driftward_serving_records_dropped_total",
            "Prediction records and labels that never reached the monitor, by reason.",
            [*ids, "kind", "reason"],
            registry=registry,
        ),
        labels=Counter(
            "driftward_serving_labels_received_total",
            "Ground-truth labels received on /feedback, by outcome.",
            [*ids, "outcome"],
            registry=registry,
        ),
        prediction_ids_evicted=Counter(
            "driftward_serving_prediction_ids_evicted_total",
            "Prediction ids that left the live label window (expired) or were forgotten.",
            [*ids, "tier"],
            registry=registry,
        ),
        model_ready=Gauge(
            "driftward_serving_model_ready",
            "1 if the model loaded and is serving, else 0.",
            ids,
            registry=registry,
            multiprocess_mode="livemin",
        ),
        sklearn_mismatch=Gauge(
            "driftward_serving_model_sklearn_version_mismatch",
            "1 if the artifact was saved with another scikit-learn version than the one "
            "serving it (the readiness log line and the model metadata name both), else 0.",
            ids,
            registry=registry,
            multiprocess_mode="livemax",
        ),
    )
    for endpoint in ENDPOINTS:
        metrics.requests.labels(model, version, endpoint, "200")
        metrics.latency.labels(model, version, endpoint)
        metrics.batch_rows.labels(model, version, endpoint)
        for reason in error_reasons:
            metrics.errors.labels(model, version, endpoint, reason)
    for kind in RECORD_KINDS:
        metrics.records_sent.labels(model, version, kind)
        for reason in DROP_REASONS:
            metrics.records_dropped.labels(model, version, kind, reason)
    for outcome in LABEL_OUTCOMES:
        metrics.labels.labels(model, version, outcome)
    for tier in ID_TIERS:
        metrics.prediction_ids_evicted.labels(model, version, tier)
    metrics.model_ready.labels(model, version)
    metrics.sklearn_mismatch.labels(model, version)
    return metrics


def build_multiprocess_registry(directory: str) -> CollectorRegistry:
    """A registry that merges the values every worker wrote to `directory`."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry
