"""The verdict: drift per feature and for the dataset, realized and estimated performance.

``compute_verdict(profile, config, counts, now)`` is the one function the
monitor and the operator share: the monitor runs it on its own window, the
operator on the windows of all pods merged with ``merge_window_counts``.

Rules (docs/contracts.md): a feature drifts when its two-sample test's p-value,
corrected across all tests of the evaluation, is below ``alpha`` AND its effect
size reaches its threshold; the dataset drifts when the share of drifted
features reaches ``datasetDriftShare``, or when the model's outputs drift.
Fewer than ``minSamples`` predictions, or fewer than ``minLabels`` labels,
give Inconclusive, never an alarm.

Pure: no I/O, no clock (``now`` is passed in), no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import numpy as np

from driftward_serving.monitor.config import (
    LOWER_IS_BETTER,
    DriftMethod,
    MetricName,
    MonitorConfig,
    resolve_feature_test,
)
from driftward_serving.monitor.counts import WindowCounts
from driftward_serving.monitor.performance import (
    ClassificationMetrics,
    ClassMetrics,
    RegressionMetrics,
    all_metric_values,
    compute_classification_metrics,
    compute_estimated_metrics,
    compute_regression_metrics,
    select_metric,
)
from driftward_serving.monitor.profile import (
    FeatureProfile,
    FeatureType,
    NumericProfile,
    Profile,
    Task,
)
from driftward_serving.monitor.stats import (
    compute_chi_square_from_counts,
    compute_corrected_p_values,
    compute_cramers_v,
    compute_jensen_shannon,
    compute_ks_from_counts,
    compute_psi,
    compute_wasserstein_from_counts,
)

PSI_GROUPS = 10


class State(StrEnum):
    """A verdict's state; only Drifted and Degraded can lead to an action."""

    OK = "Ok"
    DRIFTED = "Drifted"
    DEGRADED = "Degraded"
    INCONCLUSIVE = "Inconclusive"


_STATE_RANK = {State.OK: 0, State.INCONCLUSIVE: 1, State.DRIFTED: 2, State.DEGRADED: 3}


class Severity(StrEnum):
    """How far a metric moved past its allowed degradation."""

    NONE = "none"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class FeatureEvidence:
    """One column's test: statistic, raw and corrected p-value, effect and decision."""

    feature: str
    kind: FeatureType
    test: str
    statistic: float
    p_value: float
    corrected_p: float | None
    method: DriftMethod
    effect: float
    threshold: float
    drifted: bool
    tested: bool
    samples: int
    reference_samples: int
    missing: int
    unseen: int


@dataclass(frozen=True)
class DriftVerdict:
    """Drift of every feature, of the model's outputs, and of the dataset."""

    state: State
    share: float
    drifted_features: tuple[str, ...]
    tested_features: int
    features: tuple[FeatureEvidence, ...]
    prediction: FeatureEvidence | None
    samples: int
    min_samples: int
    alpha: float
    correction: str
    dataset_drift_share: float
    reason: str


@dataclass(frozen=True)
class MetricEvidence:
    """One metric's value, and for the policy's metric its baseline and degradation."""

    metric: MetricName
    value: float | None
    baseline: float | None = None
    degradation: float | None = None
    severity: Severity | None = None


@dataclass(frozen=True)
class PerformanceVerdict:
    """Realized performance from labels joined by prediction id."""

    state: State
    metric: MetricName
    value: float | None
    baseline: float
    max_degradation: float
    degradation: float | None
    severity: Severity | None
    labels: int
    min_labels: int
    label_coverage: float
    metrics: tuple[MetricEvidence, ...]
    per_class: tuple[ClassMetrics, ...]
    reason: str


@dataclass(frozen=True)
class EstimatedVerdict:
    """Performance estimated from prediction confidence (CBPE), before labels arrive."""

    state: State
    metric: MetricName | None
    value: float | None
    baseline: float | None
    degradation: float | None
    severity: Severity | None
    accuracy: float | None
    f1_macro: float | None
    calibrated: bool
    samples: int
    reason: str


@dataclass(frozen=True)
class WindowSummary:
    """Which predictions the verdict looked at."""

    size: int
    samples: int
    first_ts: float | None
    last_ts: float | None
    labelled: int


@dataclass(frozen=True)
class Verdict:
    """The monitor's judgement of one window, as ``GET /v1/verdict`` returns it."""

    model: str
    version: str
    state: State
    reasons: tuple[str, ...]
    evaluated_at: float
    window: WindowSummary
    drift: DriftVerdict
    performance: PerformanceVerdict | None
    estimated: EstimatedVerdict | None


# --- drift ------------------------------------------------------------------


def _psi_groups(reference: np.ndarray) -> np.ndarray:
    """Group fine quantile bins into reference deciles, the usual resolution of PSI."""
    return compute_quantile_groups(reference, PSI_GROUPS)


def compute_quantile_groups(reference: np.ndarray, groups: int) -> np.ndarray:
    """Group index of each fine bin, so that each group holds ~1/groups of the reference."""
    total = reference.sum()
    # A bin's group is decided by the reference mass at its midpoint: deciding
    # by its start would put bins that start at 9.9999% into the wrong decile.
    middle = (
        (np.cumsum(reference) - reference / 2) / total if total > 0 else np.zeros(reference.size)
    )
    return np.minimum(groups - 1, np.floor(middle * groups)).astype(np.int64)


def _coarsen(counts: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return np.bincount(groups, weights=counts, minlength=PSI_GROUPS)


def compute_feature_evidence(
    profile: FeatureProfile,
    counts: np.ndarray,
    method: DriftMethod,
    threshold: float,
    min_samples: int,
) -> FeatureEvidence:
    """Test one column's window counts against its reference (not yet corrected)."""
    current = np.asarray(counts, dtype=np.int64)
    if current.size != profile.n_bins:
        raise ValueError(
            f"feature {profile.name!r} has {current.size} window counts; "
            f"its reference profile has {profile.n_bins} bins"
        )
    if isinstance(profile, NumericProfile):
        reference, window = profile.counts[:-1], current[:-1]
        test = compute_ks_from_counts(reference, window)
        if method is DriftMethod.WASSERSTEIN:
            effect = compute_wasserstein_from_counts(reference, window, profile.edges, profile.std)
        elif method is DriftMethod.PSI:
            groups = _psi_groups(reference.astype(np.float64))
            effect = compute_psi(_coarsen(reference, groups), _coarsen(window, groups))
        else:
            effect = test.statistic
        kind, missing, unseen = FeatureType.NUMERIC, int(current[-1]), int(window[0] + window[-1])
    else:
        reference, window = profile.counts, current
        test = compute_chi_square_from_counts(reference, window)
        if method is DriftMethod.PSI:
            effect = compute_psi(reference, window)
        elif method is DriftMethod.JENSEN_SHANNON:
            effect = compute_jensen_shannon(reference, window)
        else:
            effect = compute_cramers_v(reference, window)
        kind, missing, unseen = FeatureType.CATEGORICAL, 0, int(window[-1])
    return FeatureEvidence(
        feature=profile.name,
        kind=kind,
        test=test.test,
        statistic=test.statistic,
        p_value=test.p_value,
        corrected_p=None,
        method=method,
        effect=float(effect),
        threshold=threshold,
        drifted=False,
        tested=test.n_current >= min_samples and test.n_reference > 0,
        samples=test.n_current,
        reference_samples=test.n_reference,
        missing=missing,
        unseen=unseen,
    )


def _output_method(profile: FeatureProfile, config: MonitorConfig) -> tuple[DriftMethod, float]:
    block = (
        config.drift.numeric if isinstance(profile, NumericProfile) else config.drift.categorical
    )
    return block.method, block.threshold


def compute_drift(profile: Profile, config: MonitorConfig, counts: WindowCounts) -> DriftVerdict:
    """Per-feature and prediction tests, the correction across them, and the dataset rule."""
    drift, min_samples = config.drift, config.window.min_samples
    evidence: list[FeatureEvidence] = []
    for feature in config.features:
        if feature.name not in counts.features:
            raise ValueError(f"the window has no counts for feature {feature.name!r}")
        method, threshold = resolve_feature_test(config, feature)
        evidence.append(
            compute_feature_evidence(
                profile.feature(feature.name),
                counts.features[feature.name],
                method,
                threshold,
                min_samples,
            )
        )
    prediction = None
    if drift.prediction_drift and profile.output is not None and counts.output is not None:
        method, threshold = _output_method(profile.output, config)
        prediction = compute_feature_evidence(
            profile.output, counts.output, method, threshold, min_samples
        )
    tests = [e for e in [*evidence, prediction] if e is not None and e.tested]
    corrected = dict(
        zip(
            (id(e) for e in tests),
            compute_corrected_p_values([e.p_value for e in tests], drift.correction),
            strict=True,
        )
    )
    enough = counts.samples >= min_samples

    def _decide(e: FeatureEvidence) -> FeatureEvidence:
        p = corrected.get(id(e))
        drifted = enough and p is not None and p < drift.alpha and e.effect >= e.threshold
        return replace(e, corrected_p=p, drifted=bool(drifted))

    features = tuple(_decide(e) for e in evidence)
    decided_prediction = _decide(prediction) if prediction is not None else None
    tested = sum(1 for e in features if e.tested)
    drifted = tuple(e.feature for e in features if e.drifted)
    share = len(drifted) / tested if tested else 0.0
    if not enough:
        state = State.INCONCLUSIVE
        reason = f"{counts.samples} predictions in the window; drift needs at least {min_samples}"
    elif tested == 0:
        state = State.INCONCLUSIVE
        reason = f"no feature has {min_samples} non-missing values in the window"
    elif (drifted and share >= drift.dataset_drift_share) or (
        decided_prediction is not None and decided_prediction.drifted
    ):
        state = State.DRIFTED
        parts = []
        if drifted and share >= drift.dataset_drift_share:
            parts.append(
                f"{len(drifted)} of {tested} features drifted ({share:.0%} >= "
                f"{drift.dataset_drift_share:.0%}): {', '.join(drifted)}"
            )
        if decided_prediction is not None and decided_prediction.drifted:
            parts.append(
                f"the model's outputs drifted ({decided_prediction.method.value} "
                f"{decided_prediction.effect:.3f})"
            )
        reason = "; ".join(parts)
    else:
        state = State.OK
        reason = (
            f"{len(drifted)} of {tested} features drifted ({share:.0%} < "
            f"{drift.dataset_drift_share:.0%})" + (f": {', '.join(drifted)}" if drifted else "")
        )
    return DriftVerdict(
        state=state,
        share=share,
        drifted_features=drifted,
        tested_features=tested,
        features=features,
        prediction=decided_prediction,
        samples=counts.samples,
        min_samples=min_samples,
        alpha=drift.alpha,
        correction=drift.correction.value,
        dataset_drift_share=drift.dataset_drift_share,
        reason=reason,
    )


# --- performance --------------------------------------------------------------


def compute_severity(
    metric: MetricName, value: float, baseline: float, max_degradation: float
) -> tuple[float, Severity]:
    """How far the metric moved the wrong way, and whether that is medium or high."""
    degradation = value - baseline if metric in LOWER_IS_BETTER else baseline - value
    if degradation > 2 * max_degradation:
        return degradation, Severity.HIGH
    if degradation > max_degradation:
        return degradation, Severity.MEDIUM
    return degradation, Severity.NONE


def _realized_metrics(
    profile: Profile, config: MonitorConfig, counts: WindowCounts
) -> tuple[ClassificationMetrics | RegressionMetrics | None, str]:
    if config.model.task is Task.REGRESSION:
        if counts.regression is None:
            return None, "the window keeps no regression label sums"
        return compute_regression_metrics(counts.regression), ""
    if profile.classes is None or counts.classification is None:
        return None, (
            "the reference profile names no classes, so labels cannot be matched to "
            "predictions; build it with --target (or --classes)"
        )
    return compute_classification_metrics(counts.classification, profile.classes), ""


def compute_performance(
    profile: Profile, config: MonitorConfig, counts: WindowCounts
) -> PerformanceVerdict | None:
    """Realized performance against the baseline; None when the config asks for none."""
    perf = config.performance
    if perf is None:
        return None
    coverage = counts.labelled_in_window / counts.samples if counts.samples else 0.0
    metrics, problem = _realized_metrics(profile, config, counts)
    if metrics is not None and metrics.labels == 0:
        metrics, problem = None, f"no labels joined yet; performance needs {perf.min_labels}"
    labels = metrics.labels if metrics is not None else 0
    value = select_metric(metrics, perf.metric) if metrics is not None else None
    per_class = metrics.per_class if isinstance(metrics, ClassificationMetrics) else ()
    evidence: list[MetricEvidence] = []
    degradation, severity = None, None
    if metrics is not None:
        for name, metric_value in all_metric_values(metrics).items():
            if name is perf.metric and metric_value is not None:
                degradation, severity = compute_severity(
                    name, metric_value, perf.baseline, perf.max_degradation
                )
                evidence.append(
                    MetricEvidence(name, metric_value, perf.baseline, degradation, severity)
                )
            else:
                evidence.append(MetricEvidence(name, metric_value))
    if metrics is None:
        state, reason = State.INCONCLUSIVE, problem
    elif labels < perf.min_labels:
        state = State.INCONCLUSIVE
        reason = f"{labels} labels joined; performance needs at least {perf.min_labels}"
    elif value is None or degradation is None or severity is None:
        state = State.INCONCLUSIVE
        reason = f"{perf.metric.value} cannot be computed: no probabilities came with the labels"
    elif severity is Severity.NONE:
        state = State.OK
        reason = (
            f"{perf.metric.value} {value:.4f} is within {perf.max_degradation} "
            f"of baseline {perf.baseline}"
        )
    else:
        state = State.DEGRADED
        reason = (
            f"{perf.metric.value} {value:.4f} is {degradation:.4f} worse than baseline "
            f"{perf.baseline} ({severity.value}; allowed {perf.max_degradation})"
        )
    return PerformanceVerdict(
        state=state,
        metric=perf.metric,
        value=value,
        baseline=perf.baseline,
        max_degradation=perf.max_degradation,
        degradation=degradation,
        severity=severity,
        labels=labels,
        min_labels=perf.min_labels,
        label_coverage=coverage,
        metrics=tuple(evidence),
        per_class=per_class,
        reason=reason,
    )


_ESTIMABLE = (MetricName.ACCURACY, MetricName.F1_MACRO)


def compute_estimated(
    profile: Profile, config: MonitorConfig, counts: WindowCounts
) -> EstimatedVerdict | None:
    """CBPE estimate for classifiers whose predictions carry probabilities; None otherwise."""
    if config.model.task is not Task.CLASSIFICATION or counts.estimated is None:
        return None
    estimate = compute_estimated_metrics(counts.estimated, profile.calibration)
    perf = config.performance
    metric = perf.metric if perf is not None and perf.metric in _ESTIMABLE else None
    value = None
    if metric is MetricName.ACCURACY:
        value = estimate.accuracy
    elif metric is MetricName.F1_MACRO:
        value = estimate.f1_macro
    degradation, severity = None, None
    if estimate.samples < config.window.min_samples:
        state = State.INCONCLUSIVE
        reason = (
            f"{estimate.samples} predictions came with probabilities; "
            f"an estimate needs at least {config.window.min_samples}"
        )
    elif perf is None or metric is None or value is None:
        state = State.INCONCLUSIVE
        reason = (
            "no baseline to compare with"
            if perf is None
            else f"{perf.metric.value} cannot be estimated; only Accuracy and F1Macro can"
        )
    else:
        degradation, severity = compute_severity(metric, value, perf.baseline, perf.max_degradation)
        state = State.OK if severity is Severity.NONE else State.DEGRADED
        basis = "calibrated on the reference" if estimate.calibrated else "assuming calibration"
        reason = f"estimated {metric.value} {value:.4f} ({basis}) against baseline {perf.baseline}"
    return EstimatedVerdict(
        state=state,
        metric=metric,
        value=value,
        baseline=perf.baseline if perf is not None else None,
        degradation=degradation,
        severity=severity,
        accuracy=estimate.accuracy if estimate.samples else None,
        f1_macro=estimate.f1_macro if estimate.samples else None,
        calibrated=estimate.calibrated,
        samples=estimate.samples,
        reason=reason,
    )


def compute_overall_state(states: Sequence[State]) -> State:
    """The worst state: Degraded, then Drifted, then Inconclusive, then Ok."""
    return max(states, key=_STATE_RANK.__getitem__, default=State.INCONCLUSIVE)


def compute_verdict(
    profile: Profile,
    config: MonitorConfig,
    counts: WindowCounts,
    now: float,
    *,
    model: str | None = None,
    version: str | None = None,
) -> Verdict:
    """Judge one window (one pod's or several pods' merged) against the reference."""
    drift = compute_drift(profile, config, counts)
    performance = compute_performance(profile, config, counts)
    estimated = compute_estimated(profile, config, counts)
    states = [drift.state] + ([performance.state] if performance is not None else [])
    reasons = [f"drift: {drift.reason}"]
    if performance is not None:
        reasons.append(f"performance: {performance.reason}")
    if estimated is not None:
        reasons.append(f"estimated: {estimated.reason}")
    return Verdict(
        model=model if model is not None else config.model.name,
        version=version if version is not None else config.model.version,
        state=compute_overall_state(states),
        reasons=tuple(reasons),
        evaluated_at=now,
        window=WindowSummary(
            size=config.window.size,
            samples=counts.samples,
            first_ts=counts.first_ts,
            last_ts=counts.last_ts,
            labelled=counts.labelled_in_window,
        ),
        drift=drift,
        performance=performance,
        estimated=estimated,
    )


# --- JSON ---------------------------------------------------------------------


def _num(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return float(value)


def _evidence_json(e: FeatureEvidence) -> dict[str, Any]:
    return {
        "feature": e.feature,
        "type": e.kind.value,
        "test": e.test,
        "statistic": _num(e.statistic),
        "pValue": _num(e.p_value),
        "correctedP": _num(e.corrected_p),
        "method": e.method.value,
        "effect": _num(e.effect),
        "threshold": e.threshold,
        "drifted": e.drifted,
        "state": "Tested" if e.tested else State.INCONCLUSIVE.value,
        "samples": e.samples,
        "referenceSamples": e.reference_samples,
        "missing": e.missing,
        "unseen": e.unseen,
    }


def verdict_to_json(verdict: Verdict) -> dict[str, Any]:
    """The verdict as ``GET /v1/verdict`` returns it (camelCase, JSON types only)."""
    drift = verdict.drift
    doc: dict[str, Any] = {
        "model": verdict.model,
        "version": verdict.version,
        "state": verdict.state.value,
        "reasons": list(verdict.reasons),
        "evaluatedAt": verdict.evaluated_at,
        "window": {
            "size": verdict.window.size,
            "samples": verdict.window.samples,
            "firstTs": verdict.window.first_ts,
            "lastTs": verdict.window.last_ts,
            "labelled": verdict.window.labelled,
        },
        "drift": {
            "state": drift.state.value,
            "share": drift.share,
            "driftedFeatures": list(drift.drifted_features),
            "testedFeatures": drift.tested_features,
            "samples": drift.samples,
            "minSamples": drift.min_samples,
            "alpha": drift.alpha,
            "correction": drift.correction,
            "datasetDriftShare": drift.dataset_drift_share,
            "reason": drift.reason,
            "features": [_evidence_json(e) for e in drift.features],
            "prediction": _evidence_json(drift.prediction) if drift.prediction else None,
        },
        "performance": None,
        "estimated": None,
    }
    perf = verdict.performance
    if perf is not None:
        doc["performance"] = {
            "state": perf.state.value,
            "metric": perf.metric.value,
            "value": _num(perf.value),
            "baseline": perf.baseline,
            "maxDegradation": perf.max_degradation,
            "degradation": _num(perf.degradation),
            "severity": perf.severity.value if perf.severity else None,
            "labels": perf.labels,
            "minLabels": perf.min_labels,
            "labelCoverage": perf.label_coverage,
            "reason": perf.reason,
            "metrics": [
                {
                    "metric": m.metric.value,
                    "value": _num(m.value),
                    "baseline": m.baseline,
                    "degradation": _num(m.degradation),
                    "severity": m.severity.value if m.severity else None,
                }
                for m in perf.metrics
            ],
            "perClass": [
                {
                    "label": c.label,
                    "precision": c.precision,
                    "recall": c.recall,
                    "f1": c.f1,
                    "support": c.support,
                }
                for c in perf.per_class
            ],
        }
    est = verdict.estimated
    if est is not None:
        doc["estimated"] = {
            "state": est.state.value,
            "metric": est.metric.value if est.metric else None,
            "value": _num(est.value),
            "baseline": est.baseline,
            "degradation": _num(est.degradation),
            "severity": est.severity.value if est.severity else None,
            "accuracy": _num(est.accuracy),
            "f1Macro": _num(est.f1_macro),
            "calibrated": est.calibrated,
            "samples": est.samples,
            "reason": est.reason,
        }
    return doc
