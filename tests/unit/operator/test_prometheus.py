"""The Prometheus source's pure parts: the query, the spec, and windows rebuilt per pod."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from driftward_operator.aggregate import PodWindow, compute_aggregate, compute_selection
from driftward_operator.prometheus import (
    PrometheusError,
    PrometheusSource,
    build_window_query,
    compute_pod_windows,
    compute_source,
    parse_query_response,
)
from driftward_serving.monitor.counts import window_counts_from_json
from driftward_serving.monitor.series import window_counts_to_series

from .verdicts import build_pod_window, build_profile_and_config

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def as_vector(pod: PodWindow, extra: dict[str, str]) -> list[dict[str, Any]]:
    """A pod's window as Prometheus returns it from an instant query (empty labels gone)."""
    assert pod.document is not None
    counts = window_counts_from_json(pod.document)
    out = []
    for series in window_counts_to_series(counts):
        labels = {k: v for k, v in series.labels.items() if v != ""}
        labels |= {"__name__": "driftward_monitor_window_counts", **extra}
        out.append({"metric": labels, "value": [1_700_000_000.0, repr(series.value)]})
    return out


def test_windows_read_through_prometheus_merge_to_the_pods_source_verdict() -> None:
    profile, config = build_profile_and_config()
    pods = [
        build_pod_window(profile, config, "serve-a", 300, shift=0.4, seed=1),
        build_pod_window(profile, config, "serve-b", 300, shift=0.4, seed=2, start=300),
    ]
    vector = as_vector(pods[0], {"pod": "serve-a", "instance": "10.0.0.1:8082"})
    vector += as_vector(pods[1], {"pod": "serve-b", "instance": "10.0.0.2:8082"})
    answers = compute_pod_windows(vector, "pod")
    assert [a.pod for a in answers] == ["serve-a", "serve-b"]
    via_prometheus = compute_aggregate(compute_selection(answers), profile, config, NOW)
    direct = compute_aggregate(compute_selection(pods), profile, config, NOW)
    assert via_prometheus is not None
    assert direct is not None
    assert via_prometheus.verdict.drift.samples == direct.verdict.drift.samples == 600
    assert [(e.feature, e.statistic, e.p_value) for e in via_prometheus.verdict.drift.features] == [
        (e.feature, e.statistic, e.p_value) for e in direct.verdict.drift.features
    ]
    assert via_prometheus.verdict.drift.state is direct.verdict.drift.state


def test_series_without_the_pod_label_group_by_instance_and_bad_ones_are_named() -> None:
    profile, config = build_profile_and_config()
    good = build_pod_window(profile, config, "x", 250)
    vector = as_vector(good, {"instance": "10.0.0.9:8082"})
    vector.append({"metric": {"pod": "broken", "part": "samples"}, "value": [0, "3"]})
    garbled = as_vector(good, {"pod": "garbled"})
    garbled[0]["value"] = [0, "not-a-number"]
    answers = compute_pod_windows(vector + garbled, "pod")
    by_pod = {a.pod: a for a in answers}
    assert by_pod["10.0.0.9:8082"].document is not None
    assert "no label 'profile_digest'" in by_pod["broken"].error
    assert by_pod["garbled"].document is None
    assert "no numeric value" in by_pod["garbled"].error


def test_the_query_selects_one_version_of_one_model_and_quotes_values() -> None:
    source = PrometheusSource(url="http://prom:9090", selector={"cluster": 'eu"1'})
    query = build_window_query(source, "ml-prod", "fraud", "v2")
    assert query == (
        'driftward_monitor_window_counts{cluster="eu\\"1",namespace="ml-prod",'
        'model="fraud",version="v2"}'
    )
    custom = PrometheusSource(url="http://p", namespace_label="kubernetes_namespace")
    assert 'kubernetes_namespace="ns"' in build_window_query(custom, "ns", "m", "v")


def test_the_spec_picks_the_source_with_its_defaults() -> None:
    assert compute_source({"monitoring": {}}) is None
    assert compute_source({"monitoring": {"source": {"type": "Pods"}}}) is None
    source = compute_source(
        {"monitoring": {"source": {"type": "Prometheus", "prometheus": {"url": "http://p:9090/"}}}}
    )
    assert source == PrometheusSource(url="http://p:9090")
    with pytest.raises(PrometheusError, match=r"spec.monitoring.source.prometheus.url"):
        compute_source({"monitoring": {"source": {"type": "Prometheus"}}})


@pytest.mark.parametrize(
    ("status", "body", "needle"),
    [
        (400, {"status": "error", "errorType": "bad_data", "error": "parse error"}, "bad_data"),
        (200, ["not", "an", "object"], "no JSON object"),
        (200, {"status": "success", "data": {"resultType": "matrix"}}, "not an instant vector"),
    ],
)
def test_prometheus_errors_name_the_url_and_the_cause(status: int, body: Any, needle: str) -> None:
    with pytest.raises(PrometheusError) as caught:
        parse_query_response("http://p/api/v1/query", status, body)
    assert needle in str(caught.value)
    assert "http://p/api/v1/query" in str(caught.value)
