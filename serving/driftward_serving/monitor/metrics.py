"""Prometheus metrics of the monitor, on a registry the process owns.

Labels are bounded: model, version, feature (from the config, at most 500),
metric and state (fixed enums), outcome (fixed). Every series is created up
front so dashboards see zeros (or NaN for not-yet-computed values) rather
than gaps. This module must not serve HTTP; the CLI exposes the registry on
the metrics port.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from driftward_serving.monitor.config import MetricName
from driftward_serving.monitor.counts import WindowCounts
from driftward_serving.monitor.profile import OUTPUT_NAME
from driftward_serving.monitor.series import METRIC_NAME, SERIES_LABELS, window_counts_to_series
from driftward_serving.monitor.verdict import State, Verdict
from driftward_serving.monitor.window import IntakeResult

PREDICTION_OUTCOMES = ("accepted", "rejected", "duplicate")
LABEL_OUTCOMES = ("joined", "unknown", "duplicate", "late", "invalid")
BATCH_REJECTIONS = ("too_large", "invalid", "version_mismatch")
ESTIMATED_METRICS = (MetricName.ACCURACY, MetricName.F1_MACRO)


class MonitorMetrics:
    """The monitor's collectors for one model version, registered on ``registry``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        model: str,
        version: str,
        features: Sequence[str],
        metrics: Sequence[MetricName],
    ) -> None:
        base = ["model", "version"]
        self._ids = {"model": model, "version": version}
        self.predictions = Counter(
            "driftward_monitor_predictions",
            "Prediction records received, by outcome (duplicate ids are also accepted).",
            [*base, "outcome"],
            registry=registry,
        )
        self.labels = Counter(
            "driftward_monitor_labels",
            "Labels received, by how the join by prediction id went.",
            [*base, "outcome"],
            registry=registry,
        )
        self.batches_rejected = Counter(
            "driftward_monitor_record_batches_rejected",
            "POST /v1/records batches refused whole, by reason.",
            [*base, "reason"],
            registry=registry,
        )
        self.join_evictions = Counter(
            "driftward_monitor_join_buffer_evictions",
            "Prediction ids pushed out of the bounded join buffer before a label came.",
            base,
            registry=registry,
        )
        self.feature_score = Gauge(
            "driftward_monitor_feature_drift_score",
            "Effect size of each feature's drift (KS D, normalised Wasserstein, PSI, "
            "Jensen-Shannon distance or Cramer's V, per the feature's method).",
            [*base, "feature"],
            registry=registry,
        )
        self.feature_p = Gauge(
            "driftward_monitor_feature_drift_p_value",
            "Raw two-sample p-value of each feature (KS or chi-square).",
            [*base, "feature"],
            registry=registry,
        )
        self.feature_corrected_p = Gauge(
            "driftward_monitor_feature_drift_corrected_p_value",
            "P-value of each feature after the multiple-testing correction.",
            [*base, "feature"],
            registry=registry,
        )
        self.feature_drifted = Gauge(
            "driftward_monitor_feature_drifted",
            "1 when the feature drifted in the last evaluation, else 0.",
            [*base, "feature"],
            registry=registry,
        )
        self.drift_share = Gauge(
            "driftward_monitor_drift_share_ratio",
            "Share of tested features that drifted.",
            base,
            registry=registry,
        )
        self.performance = Gauge(
            "driftward_monitor_performance",
            "Realized performance over joined labels, by metric.",
            [*base, "metric"],
            registry=registry,
        )
        self.estimated = Gauge(
            "driftward_monitor_estimated_performance",
            "Performance estimated from prediction confidence (assumes calibration).",
            [*base, "metric"],
            registry=registry,
        )
        self.label_coverage = Gauge(
            "driftward_monitor_label_coverage_ratio",
            "Share of the window's predictions whose label has been joined.",
            base,
            registry=registry,
        )
        self.window_samples = Gauge(
            "driftward_monitor_window_samples",
            "Predictions in the drift window.",
            base,
            registry=registry,
        )
        self.window_labels = Gauge(
            "driftward_monitor_window_labels",
            "Joined labels in the performance window.",
            base,
            registry=registry,
        )
        self.state = Gauge(
            "driftward_monitor_verdict_state",
            "1 for the current verdict state, 0 for the others.",
            [*base, "state"],
            registry=registry,
        )
        self.evaluations = Counter(
            "driftward_monitor_evaluations",
            "Evaluations run, by outcome.",
            [*base, "outcome"],
            registry=registry,
        )
        self.evaluation_duration = Histogram(
            "driftward_monitor_evaluation_duration_seconds",
            "Time to compute one verdict from the window counts.",
            base,
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.last_evaluation = Gauge(
            "driftward_monitor_last_evaluation_timestamp_seconds",
            "Unix time of the last evaluation.",
            base,
            registry=registry,
        )
        self._initialise(features, metrics)

    def _initialise(self, features: Sequence[str], metrics: Sequence[MetricName]) -> None:
        ids = self._ids
        # The intake's children, looked up once: labels() costs ~5 us, and every
        # record batch counts nine outcomes.
        self._prediction_counts = {
            outcome: self.predictions.labels(**ids, outcome=outcome)
            for outcome in PREDICTION_OUTCOMES
        }
        self._label_counts = {
            outcome: self.labels.labels(**ids, outcome=outcome) for outcome in LABEL_OUTCOMES
        }
        self._join_eviction_count = self.join_evictions.labels(**ids)
        for reason in BATCH_REJECTIONS:
            self.batches_rejected.labels(**ids, reason=reason)
        for outcome in ("ok", "error"):
            self.evaluations.labels(**ids, outcome=outcome)
        self.join_evictions.labels(**ids)
        self.evaluation_duration.labels(**ids)
        for name in [*features, OUTPUT_NAME]:
            for gauge in (self.feature_score, self.feature_p, self.feature_corrected_p):
                gauge.labels(**ids, feature=name).set(math.nan)
            self.feature_drifted.labels(**ids, feature=name).set(0)
        for metric in metrics:
            self.performance.labels(**ids, metric=metric.value).set(math.nan)
        for metric in ESTIMATED_METRICS:
            self.estimated.labels(**ids, metric=metric.value).set(math.nan)
        for state in State:
            self.state.labels(**ids, state=state.value).set(0)
        for gauge in (
            self.drift_share,
            self.label_coverage,
            self.window_samples,
            self.window_labels,
        ):
            gauge.labels(**ids).set(0)

    def observe_intake(self, result: IntakeResult, join_evictions: int) -> None:
        """Count one batch's records and labels."""
        for counter, value in (
            (self._prediction_counts["accepted"], result.accepted_predictions),
            (self._prediction_counts["rejected"], result.rejected_predictions),
            (self._prediction_counts["duplicate"], result.duplicate_predictions),
            (self._label_counts["joined"], result.accepted_labels),
            (self._label_counts["unknown"], result.unknown_labels),
            (self._label_counts["duplicate"], result.duplicate_labels),
            (self._label_counts["late"], result.late_labels),
            (self._label_counts["invalid"], result.invalid_labels),
            (self._join_eviction_count, join_evictions),
        ):
            if value:
                counter.inc(value)

    def observe_rejected_batch(self, reason: str) -> None:
        """Count a batch refused whole."""
        self.batches_rejected.labels(**self._ids, reason=reason).inc()

    def observe_verdict(self, verdict: Verdict, duration_seconds: float) -> None:
        """Export everything a verdict says."""
        ids = self._ids
        tested = list(verdict.drift.features)
        if verdict.drift.prediction is not None:
            tested.append(verdict.drift.prediction)
        for e in tested:
            labels = {**ids, "feature": e.feature}
            self.feature_score.labels(**labels).set(e.effect)
            self.feature_p.labels(**labels).set(e.p_value)
            self.feature_corrected_p.labels(**labels).set(
                math.nan if e.corrected_p is None else e.corrected_p
            )
            self.feature_drifted.labels(**labels).set(1 if e.drifted else 0)
        self.drift_share.labels(**ids).set(verdict.drift.share)
        window = verdict.window
        self.window_samples.labels(**ids).set(window.samples)
        self.label_coverage.labels(**ids).set(
            window.labelled / window.samples if window.samples else 0
        )
        perf = verdict.performance
        if perf is not None:
            self.window_labels.labels(**ids).set(perf.labels)
            for metric in perf.metrics:
                value = math.nan if metric.value is None else metric.value
                self.performance.labels(**ids, metric=metric.metric.value).set(value)
        est = verdict.estimated
        if est is not None:
            for name, estimate in (
                (MetricName.ACCURACY, est.accuracy),
                (MetricName.F1_MACRO, est.f1_macro),
            ):
                self.estimated.labels(**ids, metric=name.value).set(
                    math.nan if estimate is None else estimate
                )
        for state in State:
            self.state.labels(**ids, state=state.value).set(1 if state is verdict.state else 0)
        self.evaluations.labels(**ids, outcome="ok").inc()
        self.evaluation_duration.labels(**ids).observe(duration_seconds)
        self.last_evaluation.labels(**ids).set(verdict.evaluated_at)

    def observe_failed_evaluation(self) -> None:
        """Count an evaluation that raised."""
        self.evaluations.labels(**self._ids, outcome="error").inc()


class WindowCountsCollector(Collector):
    """Exports the last evaluated window's counts (series.py), for the Prometheus source.

    It reads an immutable snapshot through ``latest`` at scrape time, so a
    scrape from the metrics thread never sees a window being updated.
    """

    def __init__(self, model: str, version: str, latest: Callable[[], WindowCounts | None]) -> None:
        self._ids = (model, version)
        self._latest = latest

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One series per non-zero window cell; nothing before the first evaluation."""
        family = GaugeMetricFamily(
            METRIC_NAME,
            "The monitor's mergeable window (GET /v1/window) as of its last evaluation, "
            "one series per non-zero cell; summed across pods by the operator's "
            "Prometheus source.",
            labels=["model", "version", *SERIES_LABELS],
        )
        counts = self._latest()
        if counts is not None:
            for series in window_counts_to_series(counts):
                family.add_metric(
                    [*self._ids, *(series.labels[name] for name in SERIES_LABELS)], series.value
                )
        yield family
