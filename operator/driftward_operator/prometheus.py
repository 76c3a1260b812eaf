"""The Prometheus source: read the monitors' windows through PromQL instead of from the pods.

For clusters where the operator cannot reach pod IPs (network policies, a
central operator, another cluster) but Prometheus scrapes the monitors. One
instant query returns the ``driftward_monitor_window_counts`` series of every
pod of the model version; they are grouped by pod and turned back into the
same window documents the pods serve on ``GET /v1/window``, so the merge,
the verdict and the policy are the very code of the Pods source.

The query is built here (pure) and sent with one GET to ``/api/v1/query``;
errors name the URL and what Prometheus said. The reference profile cannot
come from a pod here: the operator profiles ``spec.monitoring.reference``
itself (monitors.ProfileCache.build).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from driftward_operator.aggregate import PodWindow
from driftward_serving.monitor.series import (
    METRIC_NAME,
    Series,
    SeriesError,
    window_document_from_series,
)

SOURCE_PODS = "Pods"
SOURCE_PROMETHEUS = "Prometheus"
DEFAULT_POD_LABEL = "pod"
DEFAULT_NAMESPACE_LABEL = "namespace"
DEFAULT_TIMEOUT_SECONDS = 10


class PrometheusError(RuntimeError):
    """Prometheus could not be asked, or did not answer the query."""


@dataclass(frozen=True)
class PrometheusSource:
    """spec.monitoring.source.prometheus, with its defaults applied."""

    url: str
    pod_label: str = DEFAULT_POD_LABEL
    namespace_label: str = DEFAULT_NAMESPACE_LABEL
    selector: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS


def compute_source(spec: Mapping[str, Any]) -> PrometheusSource | None:
    """The Prometheus source the spec asks for, or None for the default Pods source."""
    source = spec.get("monitoring", {}).get("source", {})
    if source.get("type", SOURCE_PODS) != SOURCE_PROMETHEUS:
        return None
    prometheus = source.get("prometheus") or {}
    if not prometheus.get("url"):
        # The CRD refuses this; a resource written before the rule still gets a clear answer.
        raise PrometheusError(
            "spec.monitoring.source.type is Prometheus but spec.monitoring.source.prometheus.url "
            "is not set"
        )
    return PrometheusSource(
        url=str(prometheus["url"]).rstrip("/"),
        pod_label=str(prometheus.get("podLabel", DEFAULT_POD_LABEL)),
        namespace_label=str(prometheus.get("namespaceLabel", DEFAULT_NAMESPACE_LABEL)),
        selector={str(k): str(v) for k, v in (prometheus.get("selector") or {}).items()},
        timeout_seconds=float(prometheus.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)),
    )


def _quote(value: str) -> str:
    """A PromQL string literal (double-quoted, with backslash escapes)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def build_window_query(source: PrometheusSource, namespace: str, name: str, version: str) -> str:
    """The instant query for the window series of one model version, every pod."""
    matchers = {
        **source.selector,
        source.namespace_label: namespace,
        "model": name,
        "version": version,
    }
    inner = ",".join(f"{label}={_quote(value)}" for label, value in matchers.items())
    return f"{METRIC_NAME}{{{inner}}}"


def compute_pod_windows(result: Sequence[Mapping[str, Any]], pod_label: str) -> list[PodWindow]:
    """Group an instant vector by pod and rebuild each pod's window document.

    A series without the pod label is grouped by ``instance`` instead; a
    pod whose series do not make a window is reported, not guessed at.
    """
    by_pod: dict[str, list[Series]] = {}
    unreadable: dict[str, str] = {}
    for sample in result:
        metric = sample.get("metric", {})
        pod = str(metric.get(pod_label) or metric.get("instance") or "(no pod label)")
        by_pod.setdefault(pod, [])
        try:
            value = float(sample["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            # A cell we cannot read is not a zero: the whole pod is left out, and named.
            unreadable.setdefault(pod, f"a sample has no numeric value: {sample.get('value')!r}")
            continue
        by_pod[pod].append(Series(metric, value))
    answers = []
    for pod, series in sorted(by_pod.items()):
        if pod in unreadable:
            answers.append(PodWindow(pod, error=f"{METRIC_NAME} series: {unreadable[pod]}"))
            continue
        try:
            document = window_document_from_series(series)
        except SeriesError as exc:
            answers.append(PodWindow(pod, error=f"{METRIC_NAME} series: {exc}"))
            continue
        answers.append(PodWindow(pod, document=document))
    return answers


def parse_query_response(url: str, status: int, body: Any) -> list[Mapping[str, Any]]:
    """The instant vector from a /api/v1/query answer, or PrometheusError saying why not."""
    if not isinstance(body, dict):
        raise PrometheusError(f"{url} answered HTTP {status} with no JSON object")
    if body.get("status") != "success":
        raise PrometheusError(
            f"{url} answered HTTP {status}: {body.get('errorType', 'error')}: "
            f"{body.get('error', 'no message')}"
        )
    data = body.get("data", {})
    if data.get("resultType") != "vector":
        raise PrometheusError(f"{url} returned a {data.get('resultType')!r}, not an instant vector")
    result: list[Mapping[str, Any]] = data.get("result", [])
    return result


def fetch_prometheus_windows(
    source: PrometheusSource, namespace: str, name: str, version: str
) -> list[PodWindow]:
    """Run the window query against Prometheus and return one window per pod."""
    url = f"{source.url}/api/v1/query"
    query = build_window_query(source, namespace, name, version)
    try:
        response = httpx.get(url, params={"query": query}, timeout=source.timeout_seconds)
        body = response.json()
    except httpx.HTTPError as exc:
        raise PrometheusError(f"cannot query {url}: {exc}") from None
    except ValueError:
        raise PrometheusError(
            f"{url} answered HTTP {response.status_code} with no JSON body"
        ) from None
    result = parse_query_response(url, response.status_code, body)
    return compute_pod_windows(result, source.pod_label)
